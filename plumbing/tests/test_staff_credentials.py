"""The staff view every service keeps: which staff credential it admits, as whom, and in
which role, at the moment of each call; and what it holds after a restart. Driven with
runs of records on a real database (no broker: ``apply_run``)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from afflux_contracts import (
    STAFF,
    Envelope,
    Event,
    StaffSessionEnded,
    StaffSessionStarted,
    StaffTokenIssued,
    StaffTokenRevoked,
    StaffUserCreated,
    StaffUserDisabled,
    StaffUserUpdated,
)
from afflux_plumbing.auth import ROLES, Credentials
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.positions import Position
from afflux_plumbing.runs import Handlers, record_of
from afflux_plumbing.staff_credentials import (
    SESSION_PREFIX,
    TOKEN_PREFIX,
    StaffCredentials,
    StaffViewStore,
    new_secret,
    sha256_hex,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
USER = "a" * 32
offsets = itertools.count()


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(database_url: str) -> Iterator[StaffViewStore]:
    opened = open_store(StaffViewStore, database_url, "staff_view_test")
    yield opened
    opened.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def view(store: StaffViewStore, clock: Clock) -> StaffCredentials:
    staff = StaffCredentials(clock)
    staff.attach(store)
    return staff


def apply(store: StaffViewStore, view: StaffCredentials, *events: Event) -> None:
    records = [record_of(Envelope.wrap(event, producer="console"), Position(STAFF.name, 0, next(offsets)))
               for event in events]
    store.apply_run(records, Handlers.of(view))


def user(version: int = 1, role: str = "manager", kind: Any = StaffUserCreated, **more: Any) -> Event:
    event: Event = kind(user_id=USER, email="mia@network.example", name="Mia", role=role, version=version,
                        **more)
    return event


def session(token: str, hours: float = 12) -> StaffSessionStarted:
    return StaffSessionStarted(user_id=USER, session_id="s" + token[-31:], token_sha256=sha256_hex(token),
                               role="manager", expires_at=NOW + timedelta(hours=hours))


def principal(view: StaffCredentials, token: str) -> Any:
    return Credentials("", (view,)).authenticate(token)


def test_a_session_acts_in_its_users_role_now_until_it_expires_or_ends(
    store: StaffViewStore, view: StaffCredentials, clock: Clock
) -> None:
    token, other = new_secret(SESSION_PREFIX), new_secret(SESSION_PREFIX)
    apply(store, view, user(), session(token), session(other))
    found = principal(view, token)
    assert (found.kind, found.name, found.role, found.scopes) == ("staff", USER, "manager", ROLES["manager"])
    apply(store, view, user(2, "analyst", StaffUserUpdated, changed=("role",)))
    assert principal(view, token).role == "analyst", "a new role applies at once to a live session"
    apply(store, view, StaffSessionEnded(user_id=USER, session_id="x", token_sha256=sha256_hex(other)))
    assert principal(view, other) is None and principal(view, token) is not None
    clock.now = NOW + timedelta(hours=12)
    assert principal(view, token) is None, "expired"


def test_a_disabled_user_is_refused_with_every_session_and_token_and_an_older_state_never_returns(
    store: StaffViewStore, view: StaffCredentials
) -> None:
    token, api = new_secret(SESSION_PREFIX), new_secret(TOKEN_PREFIX)
    issued = StaffTokenIssued(user_id=USER, token_id="t" * 32, name="export", token_sha256=sha256_hex(api),
                              role="manager", scopes=("partners.read",))
    apply(store, view, user(), session(token), issued)
    apply(store, view, user(3, kind=StaffUserDisabled, disabled=True))
    apply(store, view, user(2, "owner", StaffUserUpdated))  # older: a redelivery out of order
    assert principal(view, token) is None and principal(view, api) is None


def test_a_token_has_its_own_scopes_and_never_more_than_its_owners_role(
    store: StaffViewStore, view: StaffCredentials
) -> None:
    api = new_secret(TOKEN_PREFIX)
    apply(store, view, user(1, "finance"),
          StaffTokenIssued(user_id=USER, token_id="t" * 32, name="pay", token_sha256=sha256_hex(api),
                           role="finance", scopes=("statements.pay", "statements.read")))
    found = principal(view, api)
    assert (found.kind, found.name) == ("token", "t" * 32)
    assert found.scopes == {"statements.pay", "statements.read"}
    assert found.refusal("statements.close") == "forbidden_scope", "its role has it, the token does not"
    apply(store, view, user(2, "analyst", StaffUserUpdated))
    assert principal(view, api).scopes == {"statements.read"}
    assert principal(view, api).refusal("statements.pay") == "forbidden_role"


def test_a_revoked_credential_stays_refused_even_if_its_issue_arrives_after(
    store: StaffViewStore, view: StaffCredentials
) -> None:
    api = new_secret(TOKEN_PREFIX)
    digest = sha256_hex(api)
    apply(store, view, user(),
          StaffTokenRevoked(user_id="admin", token_id="t" * 32, token_sha256=digest),
          StaffTokenIssued(user_id="admin", token_id="t" * 32, name="x", token_sha256=digest, role="owner",
                           scopes=("audit.read",)))
    assert principal(view, api) is None


def test_the_bootstrap_owners_tokens_act_as_owner_within_their_scopes(
    store: StaffViewStore, view: StaffCredentials
) -> None:
    api = new_secret(TOKEN_PREFIX)
    apply(store, view, StaffTokenIssued(user_id="admin", token_id="t" * 32, name="ci", role="owner",
                                        token_sha256=sha256_hex(api), scopes=("statements.close",)))
    found = principal(view, api)
    assert (found.role, found.scopes) == ("owner", {"statements.close"})


def test_a_restarted_view_admits_exactly_what_it_did_from_its_tables(
    store: StaffViewStore, view: StaffCredentials, clock: Clock
) -> None:
    live, ended, api = new_secret(SESSION_PREFIX), new_secret(SESSION_PREFIX), new_secret(TOKEN_PREFIX)
    apply(store, view, user(1, "finance"), session(live), session(ended),
          StaffSessionEnded(user_id=USER, session_id="y", token_sha256=sha256_hex(ended)),
          StaffTokenIssued(user_id=USER, token_id="t" * 32, name="x", token_sha256=sha256_hex(api),
                           role="finance", scopes=("statements.read",)))
    restarted = StaffCredentials(clock)
    restarted.attach(store)
    for token in (live, ended, api):
        assert principal(restarted, token) == principal(view, token), token
    assert principal(restarted, live) is not None and principal(restarted, ended) is None


def test_only_an_unknown_staff_shaped_token_is_worth_waiting_for(
    store: StaffViewStore, view: StaffCredentials
) -> None:
    known = new_secret(SESSION_PREFIX)
    apply(store, view, user(), session(known))
    view.follow(store, "127.0.0.1:1")  # positions from the store: enough to say what it would wait for
    assert view.may_know_later(new_secret(SESSION_PREFIX)) and view.may_know_later(new_secret(TOKEN_PREFIX))
    assert not view.may_know_later(known), "known (live or ended): answered now"
    assert not view.may_know_later("some-service-token") and not view.may_know_later(SESSION_PREFIX + "x")
