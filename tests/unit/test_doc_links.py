"""Every link in the README and docs/ reaches a file and a heading that exist, and every reference
written as `docs/<file>.md, "<Heading>"` (the settings' descriptions use that form) names a real
heading. A renamed heading otherwise leaves readers at the top of a long page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def headings(path: Path) -> set[str]:
    """Headings, and bold items given an explicit anchor (`<a id="x"></a>**Title**`)."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    found = {line.lstrip("#").strip() for line in text.splitlines() if re.match(r"#{1,6} ", line)}
    return found | set(re.findall(r"<a id=\"[^\"]+\"></a>\*\*([^*]+)\*\*", text))


def anchors(path: Path) -> set[str]:
    return {slug(h) for h in headings(path)} | set(re.findall(r"<a id=\"([^\"]+)\"></a>", path.read_text()))


def links(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return [(m.group(1), m.group(2) or "") for m in re.finditer(r"\]\(([^)#\s]*)(?:#([^)\s]+))?\)", text)
            if not m.group(1).startswith(("http://", "https://", "mailto:"))]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_link_reaches_an_existing_file_and_heading(doc):
    broken = []
    for target, anchor in links(doc):
        path = (doc.parent / target).resolve() if target else doc
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}#{anchor}: no such heading")
    assert broken == []


def test_quoted_heading_references_name_real_headings():
    sources = [*DOCS, *ROOT.glob("config/**/*.py")]
    broken = []
    for source in sources:
        for file, heading in re.findall(r"docs/(\w+\.md), \"([^\"]+)\"", source.read_text()):
            if heading not in headings(ROOT / "docs" / file):
                broken.append(f"{source.name}: docs/{file}, \"{heading}\"")
    assert broken == []
