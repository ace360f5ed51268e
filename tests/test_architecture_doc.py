"""``docs/architecture.md`` stays true (issue #15.7): its module map names every module of
``maskreview`` and no module that is gone, and each of its three questions is answered with a
file that exists.

The map is the first fenced block under "## Module map": a tree where a line whose first column
ends in ``/`` is a folder (nested by indentation) and any other line starts with one or more
module names (``a.py, b.py``), then two spaces and what they do.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "architecture.md"


def mapped_modules(text: str) -> set[str]:
    section = text.split("## Module map", 1)[1]
    block = section.split("```", 2)[1]
    out, stack = set(), []  # stack: (indent, folder)
    for line in block.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        head = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if head.endswith("/"):
            stack.append((indent, head))
            continue
        names = [n.strip() for n in head.split(",")]
        if all(n.endswith(".py") for n in names):
            out.update("".join(folder for _, folder in stack) + n for n in names)
    return out


def actual_modules() -> set[str]:
    return {p.relative_to(REPO).as_posix() for p in (REPO / "maskreview").rglob("*.py")
            if p.name != "__init__.py" or p.parent.name == "store"}


def test_the_module_map_names_every_module_and_only_those():
    mapped = mapped_modules(DOC.read_text())
    missing, gone = actual_modules() - mapped, mapped - actual_modules()
    assert not missing, f"modules missing from docs/architecture.md's module map: {sorted(missing)}"
    assert not gone, f"docs/architecture.md's module map names modules that do not exist: {sorted(gone)}"


def test_the_three_questions_are_answered_with_files_that_exist():
    text = DOC.read_text()
    table = text.split("## Three questions, one file each", 1)[1].split("\n## ", 1)[0]
    rows = [r for r in table.splitlines() if r.startswith("| ") and "?" in r.split("|")[1]]
    assert len(rows) == 3, rows
    for row in rows:
        answer = row.split("|")[2]
        first = re.search(r"`(maskreview/[\w/]+(\.py|/))`", answer)  # a module, or the one package
        assert first, f"no file in the answer: {row}"
        assert (REPO / first.group(1)).exists(), first.group(1)


def test_the_parser_reads_folders_and_lists():
    block = ("## Module map\n\n```\nmaskreview/\n  cli.py  the command\n  core/\n    a.py, b.py  two\n"
             "    sub/\n      c.py  three\n        wrapped description line\n    d.py  four\n  gui/\n    e.py  five\n```\n")
    assert mapped_modules(block) == {"maskreview/cli.py", "maskreview/core/a.py", "maskreview/core/b.py",
                                     "maskreview/core/sub/c.py", "maskreview/core/d.py", "maskreview/gui/e.py"}
