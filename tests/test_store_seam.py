"""``maskreview/core/store/`` is the one seam to the database: only modules in it may import
FiftyOne's internals or talk to MongoDB (issue #15).

The test walks every module of ``maskreview`` outside ``core/store/`` with :mod:`ast` and fails on:

- a private FiftyOne name: an attribute ``x._name`` (``x`` not ``self``/``cls``) or a keyword
  argument ``_name=`` where ``_name`` is an identifier of FiftyOne's own source (harvested from
  the installed package, so a name FiftyOne adds is caught too) and not a name maskreview defines
  itself (a method or attribute of its own that FiftyOne happens to spell too, ``window._show``);
  the names in :data:`FIFTYONE_INTERNALS` count whoever else defines them (``._dataset``,
  ``._sample_collection``, ``._doc``, ``._data``, ``._reload_docs``, ``_instances``, ``_raw=``...);
- an import of a private module or name (``fiftyone.…._x``, ``pydantic._internal``, ``from fiftyone.x import _y``);
- an import of FiftyOne's database layer (``fiftyone.core.odm``, ``fiftyone.core.service``);
- an import of a MongoDB driver (``pymongo``, ``motor``, ``mongoengine``) or of a private part of ``bson``.

``bson``'s public names are allowed everywhere: ``bson.ObjectId`` is the type of every id FiftyOne
hands out, and ``bson.encode``/``decode``/``Binary`` are the encoding the edit journal writes to its
own files; none of them talks to a database.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "maskreview"
SEAM = PACKAGE / "core" / "store"

DRIVERS = ("pymongo", "motor", "mongoengine")
DATABASE_LAYER = ("fiftyone.core.odm", "fiftyone.core.service")

# Private names of other libraries that FiftyOne's source happens to spell too.
NOT_FIFTYONE = {
    "_load_model": "detectron2's Checkpointer method, wrapped by the safe checkpoint loader",
    "_exit": "os._exit, the standard library's exit without clean-up (the model worker's last resort)",
}
# FiftyOne's internals that maskreview used before the seam: flagged even where maskreview
# defines a name of its own spelled the same (edit_tools' ``_data()``).
FIFTYONE_INTERNALS = {
    "_dataset", "_root_dataset", "_sample_collection", "_sample_collection_name", "_doc", "_data", "_fields",
    "_fields_ordered", "_instances", "_reload_docs", "_merge_sample_field_schema", "_get_run_doc",
    "_results_cache_field", "_client", "_connection_kwargs", "_raw", "_pipeline", "_aggregate", "_stages",
}


def _fiftyone_private_names() -> set[str]:
    import importlib.util

    spec = importlib.util.find_spec("fiftyone")
    assert spec is not None and spec.submodule_search_locations, "fiftyone is not installed"
    names: set[str] = set()
    for root in spec.submodule_search_locations:
        for path in Path(root).rglob("*.py"):
            names.update(re.findall(r"\b_[A-Za-z]\w*", path.read_text(errors="replace")))
    return {n for n in names if not n.startswith("__")}


def _private_part(dotted: str) -> bool:
    return any(p.startswith("_") and not p.startswith("__") for p in dotted.split("."))


def _import_problem(module: str, names: list[str]) -> str | None:
    top = module.split(".")[0]
    if top in DRIVERS:
        return f"imports the MongoDB driver {module}"
    if module.startswith(DATABASE_LAYER) or any(f"{module}.{n}".startswith(DATABASE_LAYER) for n in names):
        return f"imports FiftyOne's database layer ({module})"
    if top in ("fiftyone", "pydantic", "bson", "eta") and (
            _private_part(module) or any(n.startswith("_") for n in names)):
        return f"imports a private name of {top} ({module}{': ' + ', '.join(names) if names else ''})"
    return None


def _own_names(trees) -> set[str]:
    """Names maskreview defines: functions, methods, classes and attributes it assigns."""
    own = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                own.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                own.add(node.attr)
    return own


def seam_violations(package: Path = PACKAGE, seam: Path = SEAM) -> list[str]:
    trees = {path: ast.parse(path.read_text(), str(path)) for path in sorted(package.rglob("*.py"))
             if seam not in path.parents}
    fo_private = (_fiftyone_private_names() - set(NOT_FIFTYONE) - _own_names(trees.values())) | FIFTYONE_INTERNALS
    found = []
    for path, tree in trees.items():
        where = path.relative_to(package.parent)
        for node in ast.walk(tree):
            problem = None
            if isinstance(node, ast.Import):
                problem = next((p for a in node.names if (p := _import_problem(a.name, []))), None)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                problem = _import_problem(node.module, [a.name for a in node.names])
            elif isinstance(node, ast.Attribute) and node.attr in fo_private:
                if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                    problem = f"uses FiftyOne's private .{node.attr}"
            elif isinstance(node, ast.keyword) and node.arg in fo_private:
                problem = f"passes FiftyOne's private keyword {node.arg}="
            if problem:
                found.append(f"{where}:{node.lineno}: {problem}")
    return found


def test_only_core_store_uses_fiftyone_internals_or_pymongo():
    found = seam_violations()
    assert not found, ("outside maskreview/core/store/ (use FiftyOne's public API or core.store):\n  "
                       + "\n  ".join(found))


@pytest.mark.parametrize("source, expected", [
    ("x = view._dataset.name", "private ._dataset"),
    ("dataset._sample_collection.find({})", "private ._sample_collection"),
    ("vals = view.values(paths, _raw=True)", "private keyword _raw="),
    ("import fiftyone.core.odm.database as fod", "database layer"),
    ("from fiftyone.core.odm import database", "database layer"),
    ("from pymongo import UpdateOne", "MongoDB driver"),
    ("import pydantic._internal._validators", "private name of pydantic"),
    ("from fiftyone.core.dataset import _list_datasets", "private name of fiftyone"),
])
def test_the_walk_sees_each_kind_of_leak(tmp_path, source, expected):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "leaky.py").write_text(source + "\n")
    (tmp_path / "pkg" / "store").mkdir()
    (tmp_path / "pkg" / "store" / "inside.py").write_text(source + "\n")  # the seam itself may
    found = seam_violations(tmp_path / "pkg", tmp_path / "pkg" / "store")
    assert len(found) == 1 and expected in found[0] and "leaky.py" in found[0]


@pytest.mark.parametrize("source", [
    "from bson import ObjectId",
    "import bson",
    "self._dataset = dataset",
    "x = view.dataset_name",
    "import fiftyone.core.fields as fof",
    "class Window:\n    def _show(self): ...\n\ndef f(window):\n    window._show()",  # its own private name
])
def test_public_names_pass(tmp_path, source):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "fine.py").write_text(source + "\n")
    assert seam_violations(tmp_path / "pkg", tmp_path / "pkg" / "store") == []
