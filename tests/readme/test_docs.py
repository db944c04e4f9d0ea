"""The README and docs/ stand on their own in a clone: every link resolves inside the
repository (anchors included), every decision record is in the index, and every
setting a service reads is in the operations guide."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
SETTING = re.compile(r'validation_alias="([A-Z][A-Z0-9_]+)"')
PER_SERVICE = re.compile(
    r"^AFFLUX_(PARTNERS|TRACKING|ATTRIBUTION|PAYOUTS|GATEWAY|POSTBACKS|CONSOLE|NOTIFICATIONS)_(PORT|SCHEMA)$")
"""Documented once, as ``AFFLUX_<SERVICE>_PORT`` / ``AFFLUX_<SERVICE>_SCHEMA``."""


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in page.read_text().splitlines() if line.startswith("#")}


def links(page: Path) -> list[str]:
    """Every link target of the page outside code blocks."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    return LINK.findall(text)


def test_every_link_of_the_readme_and_docs_resolves_inside_the_repository() -> None:
    broken = []
    for page in pages():
        for target in links(page):
            if re.match(r"^[a-z]+:", target):
                continue  # a web address
            path, _, anchor = target.partition("#")
            resolved = (page.parent / unquote(path)).resolve() if path else page
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == []


def test_nothing_points_outside_the_repository() -> None:
    outside = [f"{page.relative_to(ROOT)}: {line.strip()}" for page in pages()
               for line in page.read_text().splitlines() if "../shared" in line or "/work/" in line]
    assert outside == []


def test_the_decision_index_lists_every_record() -> None:
    index = DOCS / "decisions" / "README.md"
    listed = {target for target in links(index) if target.endswith(".md")}
    records = {path.name for path in index.parent.glob("*.md")} - {"README.md"}
    assert records - listed == set(), "add these to docs/decisions/README.md"
    assert {"embedded-broker.md", "eventsourcing-internals.md", "http1-postback-client.md",
            "consumer-framework.md"} <= listed


def test_every_setting_a_service_reads_is_in_the_operations_guide() -> None:
    sources = [*ROOT.glob("plumbing/src/**/*.py"), *ROOT.glob("services/*/src/**/*.py")]
    settings = {name for path in sources for name in SETTING.findall(path.read_text())}
    assert {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "AFFLUX_ADMIN_TOKEN"} <= settings
    guide = (DOCS / "operations.md").read_text()
    missing = sorted(name for name in settings if not PER_SERVICE.match(name) and f"`{name}`" not in guide)
    assert missing == [], "document these in docs/operations.md, Settings"
