"""The facts the code cites live in the repository: every ``docs/sources.md#anchor`` cited in
methods/, costmodel/, replicate/, figures/ and tests/ (and the READMEs and docs) resolves to an anchor
of docs/sources.md, and nothing cites the reading notes outside the repository they were taken from."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = REPO / "docs" / "sources.md"
SCANNED = ("methods", "costmodel", "replicate", "figures", "tests", "docs", "README.md", "Snakefile", "profiles")
TEXT = (".py", ".md", ".yaml", ".yml", ".json", ".csv", ".ipynb", ".smk", ".rst", ".txt", "")
#: a citation: docs/sources.md#a, optionally followed by more anchors (", #b", " and #c", "/#d")
CITATION = re.compile(r"docs/sources\.md((?:#[A-Za-z0-9_-]+)(?:(?:,\s*|\s+and\s+|/)#[A-Za-z0-9_-]+)*)")
OUTSIDE_NOTES = "papers" + ".md"  # the reading notes the sources were taken from (not in the repository)


def anchors(text: str) -> set[str]:
    """Explicit ``<a id>`` anchors and GitHub-style heading slugs."""
    ids = set(re.findall(r'<a id="([^"]+)"></a>', text))
    for heading in re.findall(r"^#+ (.+)$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        ids.add(slug)
    return ids


def scanned_files():
    """The text files scanned (this test's own examples excluded)."""
    for name in SCANNED:
        root = REPO / name
        files = [root] if root.is_file() else sorted(root.rglob("*"))
        for f in files:
            if f.is_file() and f.suffix in TEXT and "__pycache__" not in f.parts and f != Path(__file__):
                yield f


def citations() -> dict[str, list[str]]:
    """anchor -> files citing it."""
    out: dict[str, list[str]] = {}
    for f in scanned_files():
        for m in CITATION.finditer(f.read_text(errors="ignore")):
            for anchor in re.findall(r"#([A-Za-z0-9_-]+)", m.group(1)):
                out.setdefault(anchor, []).append(str(f.relative_to(REPO)))
    return out


def test_anchor_finder_reads_ids_and_headings():
    found = anchors('<a id="holitom-stage-iii"></a>\n## Stage III: merging inside the LLM\n')
    assert {"holitom-stage-iii", "stage-iii-merging-inside-the-llm"} <= found
    assert [m.group(1) for m in CITATION.finditer("see docs/sources.md#a, #b and #c-d; docs/sources.md#e.")] == \
        ["#a, #b and #c-d", "#e"]


def test_every_cited_anchor_exists():
    known = anchors(SOURCES.read_text())
    cited = citations()
    assert len(cited) >= 40, "the code cites its sources"
    missing = {a: sorted(set(files)) for a, files in cited.items() if a not in known}
    assert not missing, f"anchors cited but not in docs/sources.md: {missing}"


def test_anchors_are_unique():
    ids = re.findall(r'<a id="([^"]+)"></a>', SOURCES.read_text())
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


def test_nothing_cites_notes_outside_the_repository():
    bad = [str(f.relative_to(REPO)) for f in scanned_files() if OUTSIDE_NOTES in f.read_text(errors="ignore")]
    assert not bad, f"cite docs/sources.md#<anchor> instead of {OUTSIDE_NOTES}: {bad}"
