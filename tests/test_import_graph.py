"""``maskreview/core`` has no import cycles, and says why of each import it defers (issue #15).

The graph is built from the source with :mod:`ast` (nothing is imported): an edge ``a -> b`` for
each ``import b`` / ``from b import x`` in ``a`` (``from pkg import mod`` counts as ``pkg.mod``;
the parent packages that Python initialises first are not edges). Imports under
``if TYPE_CHECKING:`` never run and are left out.

- The module-level graph has no cycle: importing any core module never meets a half-initialised one.
- Nor does the graph with function-local imports added: a cycle kept working by moving one of its
  imports into a function is still a cycle (the evaluation package had one, coco <-> sharded <-> results).
- A function-local import carries a one-line reason (a comment on its line or the line above),
  except an import of a heavy third-party library (:data:`HEAVY`), whose reason is always the
  same: start-up time (the GUI shows its window before any of them is imported).
- The core never imports the GUI or Qt.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "maskreview"
CORE = PACKAGE / "core"

# Imported inside functions without a comment: each costs start-up time the window does not wait for.
HEAVY = {"torch", "torchvision", "detectron2", "fvcore", "fiftyone", "eta", "cv2", "pycocotools", "faster_coco_eval",
         "skimage", "scipy", "yaml", "PIL", "requests", "pymongo", "bson", "mongoengine", "psutil", "tqdm", "matplotlib",
         "platformdirs", "psygnal", "numpy"}


def _name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(CORE.rglob("*.py"))}
TREES = {m: ast.parse(p.read_text(), str(p)) for m, p in MODULES.items()}


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module, local: bool) -> list[tuple[ast.stmt, bool]]:
    """``(import node, inside a function)``; function bodies only when ``local``."""
    out = []

    def visit(nodes, in_function):
        for node in nodes:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                out.append((node, in_function))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if local:
                    visit(node.body, True)
            elif isinstance(node, ast.If) and _type_checking(node.test):
                visit(node.orelse, in_function)
            else:
                for name in ("body", "orelse", "finalbody", "handlers", "cases"):
                    visit(getattr(node, name, None) or [], in_function)

    visit(tree.body, False)
    return out


def _targets(node: ast.stmt, module: str) -> list[str]:
    """The modules of ``maskreview`` an import statement names."""
    if isinstance(node, ast.Import):
        named = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module.split(".") if MODULES.get(module, Path()).name == "__init__.py" else module.split(".")[:-1]
            package = package[: len(package) - node.level + 1]
            base = ".".join(package + ([base] if base else []))
        # ``from pkg import mod`` names the submodule; ``from pkg import name`` the package itself
        named = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
    out = []
    for name in named:
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            candidate = ".".join(parts[:i])
            if candidate in MODULES or candidate.startswith("maskreview.gui") or candidate == "maskreview":
                if candidate != module:
                    out.append(candidate)
                break
    return out


def _graph(local: bool) -> dict[str, set[str]]:
    return {m: {t for node, _ in _imports(tree, local) for t in _targets(node, m) if t in MODULES}
            for m, tree in TREES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle's modules (the strongly connected components with more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out = []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _explain(graph, cycle) -> list[str]:
    return [f"{a} -> {b}" for a in cycle for b in sorted(graph[a]) if b in cycle]


def test_the_graph_sees_imports_of_every_form():
    """The walker itself: relative, aliased, ``from pkg import module`` and TYPE_CHECKING imports."""
    tree = ast.parse("from typing import TYPE_CHECKING\nfrom . import masks\nfrom .editing import ops as o\n"
                     "import maskreview.core.fields\nif TYPE_CHECKING:\n    from maskreview.core import store\n"
                     "def f():\n    from maskreview.core.errors import BadInputError\n")
    module = "maskreview.core.images"
    top = {t for node, _ in _imports(tree, local=False) for t in _targets(node, module)}
    every = {t for node, _ in _imports(tree, local=True) for t in _targets(node, module)}
    assert top == {"maskreview.core.masks", "maskreview.core.editing.ops", "maskreview.core.fields"}
    assert every == top | {"maskreview.core.errors"}
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_at_module_level():
    graph = _graph(local=False)
    cycles = _cycles(graph)
    assert not cycles, "import cycles in maskreview/core:\n" + "\n".join(
        "  " + ", ".join(_explain(graph, c)) for c in cycles)


def test_no_import_cycle_hidden_in_a_function():
    graph = _graph(local=True)
    cycles = _cycles(graph)
    assert not cycles, "import cycles through function-local imports in maskreview/core:\n" + "\n".join(
        "  " + ", ".join(_explain(graph, c)) for c in cycles)


def test_every_function_local_import_says_why():
    unexplained = []
    for module, tree in TREES.items():
        lines = MODULES[module].read_text().splitlines()
        for node, in_function in _imports(tree, local=True):
            if not in_function:
                continue
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if not getattr(node, "level", 0) and all(n.split(".")[0] in HEAVY for n in names):
                continue
            said = "#" in lines[node.lineno - 1] or "#" in lines[node.end_lineno - 1] or (
                node.lineno > 1 and lines[node.lineno - 2].strip().startswith("#"))
            if not said:
                unexplained.append(f"{MODULES[module].relative_to(PACKAGE.parent)}:{node.lineno}: "
                                   f"{lines[node.lineno - 1].strip()}")
    assert not unexplained, ("function-local imports without a reason (move them to the top, or say why "
                             "on the line):\n" + "\n".join(unexplained))


def test_the_core_never_imports_the_gui_qt_or_the_cli():
    above = ("maskreview.gui", "maskreview.cli", "maskreview.desktop")  # cli and cli_args: the command line's
    offenders = []
    for module, tree in TREES.items():
        for node, _ in _imports(tree, local=True):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if any(n.split(".")[0] in ("PySide6", "PyQt5", "PyQt6", "shiboken6") or n.startswith(above)
                   for n in names) or any(t.startswith(above) for t in _targets(node, module)):
                offenders.append(f"{module}:{node.lineno}")
    assert offenders == []


def _private_borrowings(root: Path) -> list[str]:
    """``from maskreview.x import _name`` and ``module._name`` on an imported maskreview module."""
    out = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        modules = set()  # local names bound to maskreview modules
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("maskreview"):
                for a in node.names:
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        out.append(f"{path.relative_to(root.parent)}:{node.lineno}: imports {node.module}.{a.name}")
                    elif f"{node.module}.{a.name}" in MODULES or (node.module + "." + a.name).startswith("maskreview.gui"):
                        modules.add(a.asname or a.name)
            elif isinstance(node, ast.Import):
                modules |= {a.asname or a.name.split(".")[0] for a in node.names if a.name.startswith("maskreview")}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                out.append(f"{path.relative_to(root.parent)}:{node.lineno}: uses {node.value.id}.{node.attr}")
    return out


def test_no_module_borrows_another_modules_private_names():
    """A module's ``_names`` are its own: what another module needs is public (the edit path used to go
    back and forth through ``edits._oid`` and friends)."""
    borrowed = _private_borrowings(PACKAGE)
    assert not borrowed, "private names used outside their module:\n" + "\n".join(borrowed)


# What each part of the core may import (docs/architecture.md, "The packages"): the parts of
# maskreview/core, by their first name under core/ (a package or a module).
BASE = {"errors", "fields", "progress", "gcpause", "heap", "startup"}
MAY_IMPORT = {
    "errors": set(), "fields": set(), "gcpause": {"heap"}, "heap": set(), "startup": set(), "progress": {"errors"},
    "keymaps": {"errors"}, "plain_pickle": set(),
    "store": {"errors", "fields"},
    "images": BASE, "masks": BASE | {"store"}, "names": BASE | {"store"}, "cocofile": BASE | {"masks"},
    "editing": BASE | {"store", "masks", "images"},
    "evaluation": BASE | {"store", "masks", "images", "cocofile", "names"},
    "model": BASE | {"store", "masks", "images", "names", "editing", "evaluation", "plain_pickle"},
    "review": BASE | {"store", "masks", "images", "editing", "evaluation", "tagging", "keymaps", "plain_pickle"},
    "tagging": BASE | {"store", "editing", "keymaps"},
    "sources": BASE | {"store", "masks", "images", "cocofile"},
    "export": BASE | {"store", "masks", "images"},
    "demo": BASE | {"store", "masks", "sources"},
    "field_docs": BASE | {"store"},
    "app_bridge": BASE | {"store", "field_docs"},
}


def _part(module: str) -> str:
    return module.split(".")[2] if module.count(".") >= 2 else "core"


def test_each_part_of_the_core_imports_only_what_it_may():
    graph = _graph(local=True)
    wrong = sorted({f"{a} -> {b}" for a, targets in graph.items() for b in targets
                    if _part(a) != _part(b) and _part(b) not in MAY_IMPORT.get(_part(a), set())})
    unknown = sorted({_part(m) for m in MODULES} - set(MAY_IMPORT) - {"core"})
    assert not unknown, f"new parts of maskreview/core: say what they may import in MAY_IMPORT: {unknown}"
    assert not wrong, "imports against docs/architecture.md's layering:\n" + "\n".join(wrong)
