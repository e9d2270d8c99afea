"""Every relative link in the repository's Markdown resolves: to a file or folder that exists and,
with ``#anchor``, to a heading of the target (GitHub's slugs). Reference pages move between the
README and docs/; a link left pointing at the old place fails here, naming file, line and link.
External links (``http:``, ``mailto:``) are not checked: the tests need no network."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]

# [text](target) and ![alt](target), target up to the first space (a title may follow);
# reference definitions [name]: target, not footnotes [^1]: text
INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+[^)]*)?\)")
REFERENCE = re.compile(r"^\s{0,3}\[(?!\^)[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$")
CODE_SPAN = re.compile(r"(`+).*?\1")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s[^>]*(?:name|id)=\"([^\"]+)\"")
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def markdown_files() -> list[Path]:
    """The tracked Markdown files, and new ones git does not ignore."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return sorted(ROOT / name for name in listed if (ROOT / name).is_file())


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, inline code spans blanked."""
    lines, fence = [], None
    for number, line in enumerate(text.splitlines(), 1):
        marker = re.match(r"^\s{0,3}(`{3,}|~{3,})", line)
        if marker:
            if fence is None:
                fence = marker.group(1)[0] * 3
            elif marker.group(1).startswith(fence):
                fence = None
            continue
        if fence is None:
            lines.append((number, CODE_SPAN.sub("", line)))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text lower-cased, punctuation but - and _ dropped,
    spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors a Markdown file offers: its headings' slugs (repeats get -1, -2, ...) and
    explicit ``<a name|id=...>``."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    text = path.read_text(encoding="utf-8")
    for _, line in prose_lines(text):
        heading = HEADING.match(line)
        if heading:
            base = slug(heading.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    found.update(HTML_ANCHOR.findall(text))
    return found


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link and image in a Markdown file's prose."""
    found = []
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        found += [(number, target) for target in INLINE.findall(line)]
        reference = REFERENCE.match(line)
        if reference:
            found.append((number, reference.group(1)))
    return found


def broken(path: Path, target: str, cache: dict[Path, set[str]]) -> str | None:
    """Why a relative link does not resolve, or None when it does (external ones always do)."""
    if EXTERNAL.match(target):
        return None
    file_part, _, anchor = target.partition("#")
    resolved = (path.parent / unquote(file_part)).resolve() if file_part else path
    if not resolved.exists():
        shown = resolved.relative_to(ROOT) if resolved.is_relative_to(ROOT) else resolved
        return f"no such file {shown}"
    if not anchor:
        return None
    if resolved.is_dir() or resolved.suffix != ".md":
        return f"an anchor into {resolved.name}, which is not a Markdown file"
    if resolved not in cache:
        cache[resolved] = anchors(resolved)
    if unquote(anchor).lower() not in cache[resolved]:
        return f"no heading #{anchor} in {resolved.relative_to(ROOT)}"
    return None


def test_every_relative_markdown_link_resolves():
    cache: dict[Path, set[str]] = {}
    files = markdown_files()
    assert ROOT / "README.md" in files and ROOT / "docs" / "architecture.md" in files
    problems = [
        f"{path.relative_to(ROOT)}:{number}: ({target}): {reason}"
        for path in files
        for number, target in links(path)
        if (reason := broken(path, target, cache))
    ]
    assert not problems, "broken links (fix the target or the link):\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("The web board", "the-web-board"),
        ("What `validate` refuses", "what-validate-refuses"),
        (
            "Radiomics on real CT, against pyradiomics' published values",
            "radiomics-on-real-ct-against-pyradiomics-published-values",
        ),
        (
            "Isolation: what a pull request can and cannot do",
            "isolation-what-a-pull-request-can-and-cannot-do",
        ),
        ("[submissions/](submissions/README.md) and snake_case", "submissions-and-snake_case"),
        ("Site boards — ρ", "site-boards--ρ"),
    ],
)
def test_slugs_follow_github(heading, expected):
    assert slug(heading) == expected


def test_a_broken_link_is_named_with_its_file_and_line(tmp_path, monkeypatch):
    root = tmp_path.resolve()
    monkeypatch.setattr(sys.modules[__name__], "ROOT", root)
    page = root / "page.md"
    page.write_text(
        "# Top\n\n## Part\n\n## Part\n\n[ok](#part-1) [gone](other.md) [bad](#nowhere)\n"
        "```\n[in code](missing.md)\n```\n`[span](missing.md)` [web](https://example.org/x)\n"
    )
    found = links(page)
    assert [n for n, _ in found] == [7, 7, 7, 11]
    reasons = {t: broken(page, t, {}) for _, t in found}
    assert reasons["#part-1"] is None and reasons["https://example.org/x"] is None
    assert reasons["other.md"] and "other.md" in reasons["other.md"]
    assert reasons["#nowhere"] == "no heading #nowhere in page.md"
