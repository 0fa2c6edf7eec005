"""The docs cannot rot silently: every relative link in README.md and docs/ leads to a file,
and to a heading where it names one; the README stays short and points to every page."""

import re
from pathlib import Path

import pytest

from tests.helpers import PROJECT

PAGES = [PROJECT / "README.md", *sorted((PROJECT / "docs").glob("*.md"))]
README_MAX_LINES = 80  # what augflow answers, the two commands, where to read more

FENCED = re.compile(r"^[ \t]*```.*?^[ \t]*```[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`]*`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)


def prose(text: str) -> str:
    """The text without fenced code blocks, whose brackets and hashes are not markdown."""
    return FENCED.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the text of its links and code, lowercased, punctuation
    other than hyphens and underscores removed, spaces made hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading's anchor; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    result = set()
    for heading in HEADING.findall(prose(page.read_text())):
        base = slug(heading)
        result.add(f"{base}-{seen[base]}" if base in seen else base)
        seen[base] = seen.get(base, 0) + 1
    return result


def relative_links(page: Path) -> list[str]:
    """Link targets that are neither web addresses nor inside code."""
    targets = LINK.findall(INLINE_CODE.sub("", prose(page.read_text())))
    return [target for target in targets if not re.match(r"[a-z][a-z0-9+.-]*:", target)]


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (not linked.is_file() or anchor not in anchors(linked)):
            broken.append(f"{target}: no such heading")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(PROJECT)))
def test_every_relative_link_leads_to_a_file_and_heading(page):
    assert broken_links(page) == []


def test_a_broken_link_or_anchor_is_caught(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## Runtime and results\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n[fine](other.md#runtime-and-results), [here](#page), `[code](nowhere.md)`, [web](https://example.org)\n"
        "[gone](missing.md) and [bad anchor](other.md#runtime)\n```\n[fenced](nowhere.md)\n```\n"
    )
    assert broken_links(page) == ["missing.md: no such file", "other.md#runtime: no such heading"]


def test_slugs_follow_github():
    assert (
        slug("Operate it: a server, nightly runs, what-if runs from the UI")
        == "operate-it-a-server-nightly-runs-what-if-runs-from-the-ui"
    )
    assert slug("Protocol: choose on val, score on test once") == "protocol-choose-on-val-score-on-test-once"
    assert slug("The `seed` policy") == "the-seed-policy"


def test_the_readme_is_short_and_points_to_every_docs_page():
    readme = PROJECT / "README.md"
    assert len(readme.read_text().splitlines()) <= README_MAX_LINES
    linked = {(readme.parent / target.partition("#")[0]).resolve() for target in relative_links(readme)}
    assert set(PAGES[1:]) <= linked
