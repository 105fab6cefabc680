"""The documentation site's structure: every page reachable from the index, a short README, no paths outside
the repository. Static checks only (no Sphinx run); ``make docs`` / ``make docs-fast`` build the site."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GENERATED = DOCS / "build"  # sphinx-gallery output, not a source


def _sources() -> set[Path]:
    pages = {p for ext in ("*.md", "*.rst") for p in DOCS.rglob(ext)}
    pages = {p for p in pages if GENERATED not in p.parents}
    pages.discard(DOCS / "tutorials" / "README.rst")  # the gallery header, becomes build/tutorials/index
    return pages


def _toctree_entries(page: Path) -> list[Path]:
    text = page.read_text(encoding="utf-8")
    blocks = re.findall(r"```\{toctree\}\n(.*?)```", text, re.S)
    blocks += re.findall(r"\.\. toctree::\n((?:\n|   .*\n)*)", text)
    entries = []
    for block in blocks:
        for line in block.splitlines():
            line = line.strip()
            if not line or line.startswith(":"):
                continue
            entries.append((page.parent / line).resolve())
    return entries


def _resolve(entry: Path) -> Path | None:
    for suffix in (".md", ".rst"):
        if entry.with_suffix(suffix).exists():
            return entry.with_suffix(suffix)
    return None


def test_every_page_is_reachable_from_the_index():
    reached, todo = set(), [DOCS / "index.md"]
    while todo:
        page = todo.pop()
        if page in reached:
            continue
        reached.add(page)
        for entry in _toctree_entries(page):
            if GENERATED in entry.parents:  # the executed tutorials: the gallery header stands for them
                reached.add(DOCS / "tutorials" / "README.rst")
                continue
            target = _resolve(entry)
            assert target is not None, f"{page.relative_to(ROOT)} lists {entry}, which does not exist"
            todo.append(target)
    unreachable = sorted(str(p.relative_to(ROOT)) for p in _sources() - reached)
    assert not unreachable, f"pages not reachable from docs/index.md: {unreachable}"


def test_every_tutorial_is_a_gallery_script():
    scripts = sorted((DOCS / "tutorials").glob("plot_*.py"))
    assert len(scripts) >= 4
    for script in scripts:
        assert script.read_text(encoding="utf-8").startswith('"""\n'), f"{script.name}: needs a title docstring"


def test_readme_is_short_and_links_into_the_docs():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    assert "make run" in text and "make test" in text
    for link in re.findall(r"\]\(([^)#]+)\)", text):
        if "://" not in link:
            assert (ROOT / link).exists(), f"README links to {link}, which is not in the repository"


def test_nothing_points_outside_the_repository():
    files = [ROOT / "README.md", *(p for p in DOCS.rglob("*") if p.is_file() and GENERATED not in p.parents)]
    for path in files:
        if path.suffix in {".md", ".rst", ".py", ".txt"}:
            assert "../shared" not in path.read_text(encoding="utf-8"), path
