"""The staff rules on their own: users and roles, sessions, tokens within a role, and
what an event is about (the audit's subjects)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from afflux_console.domain.audit import subjects_of
from afflux_console.domain.rules import Refused, RuleViolation
from afflux_console.domain.staff import StaffSession, StaffToken, StaffUser, check_password
from afflux_plumbing.auth import ROLES

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_a_user_is_kept_with_a_lowercased_email_a_tidy_name_and_one_known_role() -> None:
    user = StaffUser.create("  Mia@Network.Example ", "  Mia   Manager ", "manager")
    assert (user.email, user.name, user.role, user.disabled) == ("mia@network.example", "Mia Manager",
                                                                 "manager", False)
    with pytest.raises(RuleViolation, match="role"):
        StaffUser.create("x@network.example", "X", "admin")
    with pytest.raises(RuleViolation, match="email"):
        StaffUser.create("not-an-address", "X", "analyst")


def test_a_password_is_long_enough_and_not_the_email() -> None:
    check_password("a long enough phrase", "mia@network.example")
    for weak in ("short", "mia@network.example  ", "x" * 257):
        with pytest.raises(RuleViolation) as refused:
            check_password(weak, "mia@network.example")
        assert refused.value.code == "weak_password"


def test_an_edit_names_what_changed_and_nothing_is_an_event_when_nothing_did() -> None:
    user = StaffUser.create("a@network.example", "Ann", "analyst")
    assert user.edit({"role": "finance", "name": "Ann"}, by=None) == ("role",)
    assert user.edit({"role": "finance"}, by=None) == ()
    assert user.edit({"disabled": True}, by=None) == ("disabled",) and user.disabled
    with pytest.raises(RuleViolation):
        user.edit({"email": "b@network.example"}, by=None)


def test_an_owner_may_not_disable_or_demote_themselves_but_another_owner_may() -> None:
    owner = StaffUser.create("o@network.example", "Olga", "owner")
    for change in ({"disabled": True}, {"role": "manager"}):
        with pytest.raises(Refused) as refused:
            owner.edit(change, by=owner.user_id)
        assert refused.value.code == "self_lockout"
    assert owner.edit({"role": "manager"}, by="another-owner") == ("role",)


def test_a_session_lasts_its_lifetime_ends_once_and_a_disabled_user_gets_none() -> None:
    user = StaffUser.create("f@network.example", "Finn", "finance")
    session = StaffSession.start(user, "a" * 64, NOW, timedelta(hours=12), second_factor=False)
    assert (session.role, session.expires_at) == ("finance", NOW + timedelta(hours=12))
    assert session.end("signed_out") and not session.end("signed_out")
    user.edit({"disabled": True}, by=None)
    with pytest.raises(Refused):
        StaffSession.start(user, "b" * 64, NOW, timedelta(hours=12), second_factor=False)


def test_a_token_is_issued_only_within_its_owners_role() -> None:
    analyst = ROLES["analyst"]
    token = StaffToken.issue("u1", "analyst", analyst, "exports", ["statements.read", "statements.read"],
                             "c" * 64, None, NOW)
    assert token.scopes == ("statements.read",)
    with pytest.raises(RuleViolation) as beyond:
        StaffToken.issue("u1", "analyst", analyst, "closer", ["statements.close"], "d" * 64, None, NOW)
    assert beyond.value.code == "scope_not_allowed"
    with pytest.raises(RuleViolation):
        StaffToken.issue("u1", "analyst", analyst, "none", [], "e" * 64, None, NOW)
    with pytest.raises(RuleViolation):
        StaffToken.issue("u1", "analyst", analyst, "late", ["partners.read"], "f" * 64, NOW, NOW)
    assert token.revoke() and not token.revoke()


def test_an_events_subject_is_its_most_specific_id() -> None:
    assert subjects_of({"conversion_id": "c1", "offer_id": "o1", "partner_id": "p1"}) == ["c1", "o1", "p1"]
    assert subjects_of({"partner_id": "p1", "key_id": "k1"}) == ["p1", "k1"]
    assert subjects_of({"statement_id": "s1", "partner_id": "p1"})[0] == "s1"
    assert subjects_of({"smart_link_id": "s1", "name": "Mix"}) == ["s1"]
    assert subjects_of({"creative_id": "cr1", "offer_id": "o1", "name": "Banner"}) == ["cr1", "o1"]
    assert subjects_of({"name": "nothing to point at"}) == []


def test_every_role_reads_and_only_the_owner_manages_staff() -> None:
    reads = {scope for scope in ROLES["owner"] if scope.endswith(".read")}
    for role, scopes in ROLES.items():
        assert reads <= scopes, role
        assert ("staff.manage" in scopes) == (role == "owner"), role
    assert ROLES["analyst"] == reads | {"staff.self"}
    assert "conversions.review" in ROLES["manager"] and "conversions.review" not in ROLES["finance"]
    assert "statements.close" in ROLES["finance"] and "statements.close" not in ROLES["manager"]
