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
TOP_FOLDERS = (
    r"benchmark|baselines|conf|docs|hydra_plugins|leaderboard|scripts|submissions|tests|\.ci"
)
SUFFIXES = "py|ya?ml|md|sh|json|toml|csv|gz|txt|html|png|js|css"
CODE_PATH = re.compile(rf"^(?:{TOP_FOLDERS})/\S*?(?:\.(?:{SUFFIXES})|/)$")
PLACEHOLDER = re.compile(r"[<>*{}]|NAME|\.\.\.")
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def repository_files(pattern: str = "*") -> list[str]:
    """Tracked files, and new ones git does not ignore: what a clone of this branch holds."""
    return subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", pattern],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()


def repository_paths() -> set[str]:
    """Every file a clone holds, and every folder (as ``name/``), relative to the root."""
    files = repository_files()
    return set(files) | {f"{folder.as_posix()}/" for name in files for folder in Path(name).parents}


def markdown_files() -> list[Path]:
    """The repository's Markdown files."""
    return sorted(ROOT / name for name in repository_files("*.md") if (ROOT / name).is_file())


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of the lines outside fenced code blocks."""
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
            lines.append((number, line))
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
        heading = HEADING.match(CODE_SPAN.sub(lambda m: m.group(0).strip("`"), line))
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
        line = CODE_SPAN.sub("", line)
        found += [(number, target) for target in INLINE.findall(line)]
        reference = REFERENCE.match(line)
        if reference:
            found.append((number, reference.group(1)))
    return found


def broken(path: Path, target: str, held: set[str], cache: dict[Path, set[str]]) -> str | None:
    """Why a relative link does not resolve to a file or folder in ``held`` (a clone's, not
    this checkout's ignored ones), or None when it does; external links always do."""
    if EXTERNAL.match(target):
        return None
    file_part, _, anchor = target.partition("#")
    resolved = (path.parent / unquote(file_part)).resolve() if file_part else path
    inside = resolved.relative_to(ROOT).as_posix() if resolved.is_relative_to(ROOT) else None
    if inside not in held and f"{inside}/" not in held:
        return f"no such file {inside or resolved} in the repository"
    if not anchor:
        return None
    if f"{inside}/" in held or resolved.suffix != ".md":
        return f"an anchor into {resolved.name}, which is not a Markdown file"
    if resolved not in cache:
        cache[resolved] = anchors(resolved)
    if unquote(anchor).lower() not in cache[resolved]:
        return f"no heading #{anchor} in {resolved.relative_to(ROOT)}"
    return None


def test_every_relative_markdown_link_resolves():
    held, cache = repository_paths(), {}
    files = markdown_files()
    assert ROOT / "README.md" in files and ROOT / "docs" / "architecture.md" in files
    problems = [
        f"{path.relative_to(ROOT)}:{number}: ({target}): {reason}"
        for path in files
        for number, target in links(path)
        if (reason := broken(path, target, held, cache))
    ]
    assert not problems, "broken links (fix the target or the link):\n" + "\n".join(problems)


def code_paths(path: Path) -> list[tuple[int, str]]:
    """(line number, path) of every inline code span in prose that names a file or folder of the
    repository: it starts at a top-level folder, ends in a file suffix or ``/``, and holds no
    placeholder (``<name>``, ``*``, ``NAME``, ``...``)."""
    found = []
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        for span in re.findall(r"`([^`\s]+)`", line):
            if CODE_PATH.match(span) and not PLACEHOLDER.search(span):
                found.append((number, span))
    return found


def test_every_repository_path_in_markdown_code_exists():
    """`benchmark/foo.py` in prose names a file a clone holds (from the repository root, or from
    the page's own folder), so a moved module cannot leave its old path in the docs."""
    held, problems = repository_paths(), []
    for path in markdown_files():
        here = path.parent.relative_to(ROOT)
        for number, span in code_paths(path):
            candidates = {span, (here / span).as_posix() + ("/" if span.endswith("/") else "")}
            if not candidates & held:
                problems.append(f"{path.relative_to(ROOT)}:{number}: `{span}`: no such file")
    assert not problems, "paths in code spans that do not exist:\n" + "\n".join(problems)


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
    reasons = {t: broken(page, t, {"page.md"}, {}) for _, t in found}
    assert reasons["#part-1"] is None and reasons["https://example.org/x"] is None
    assert reasons["other.md"] and "other.md" in reasons["other.md"]
    assert reasons["#nowhere"] == "no heading #nowhere in page.md"


def test_code_paths_are_told_from_placeholders_and_code(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "`benchmark/evaluation/metrics.py` and `leaderboard/figures/`,\n"
        "not `conf/model/<name>.yaml`,\n"
        "`submissions/NAME/`, `benchmark/config_rules.OFFERED` or `make test`\n"
        "```\nbenchmark/in_a_fence.py\n```\n"
    )
    assert code_paths(page) == [(1, "benchmark/evaluation/metrics.py"), (1, "leaderboard/figures/")]
