"""The README is the front door and docs/ the reference: every relative link in them must
lead to a file that exists, so moving a page or a script cannot leave a dead link behind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# [text](target) and ![alt](target), the target up to a space, '#' or ')'
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s#]*)(?:#[^)\s]*)?(?:\s+\"[^\"]*\")?\)")
README_LIMIT = 16_000


def relative_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)  # code blocks hold no links
    return [target for target in LINK.findall(text) if target and not re.match(r"[a-z][a-z0-9+.-]*:", target)]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    missing = [target for target in relative_links(page) if not (page.parent / target).exists()]
    assert not missing, f"{page.relative_to(ROOT)} links to missing files: {missing}"


def test_link_pattern_finds_links_and_images() -> None:
    """The checker itself must see both kinds of link, with and without an anchor."""
    assert LINK.findall("see [a](docs/a.md), [b](b.md#part) and ![c](images/c.jpg)") == ["docs/a.md", "b.md", "images/c.jpg"]


def test_readme_stays_a_front_door() -> None:
    assert len((ROOT / "README.md").read_bytes()) < README_LIMIT


def test_every_docs_page_is_linked() -> None:
    """A page nothing links to is a page nobody finds."""
    linked = {(page.parent / target).resolve() for page in PAGES for target in relative_links(page)}
    orphans = [page.name for page in PAGES[1:] if page.resolve() not in linked]
    assert not orphans, f"docs pages no page links to: {orphans}"
