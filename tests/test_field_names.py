"""The names maskreview writes into a dataset live in ``core/fields.py`` only (issue #15.3).

Every string constant of ``maskreview`` outside ``core/fields.py`` (f-string parts included) is
read with :mod:`ast`; one that is such a name, has one as a dotted path part
(``"predictions.detections.source_field"``) or builds a snapshot / run field (``"_original"``,
``"_run"``) fails the test: use the constant (``GT_FIELD``, ``SOURCE_FIELD``, ``original_field()``, ...).
Docstrings are prose and left out. ``"eval"`` is also a colour mode and a command, so
``DEFAULT_EVAL_KEY``'s value is not searched for.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "maskreview"
FIELDS = PACKAGE / "core" / "fields.py"
NOT_SEARCHED = {"eval"}  # DEFAULT_EVAL_KEY: the same word names a colour mode and the `eval` command
SUFFIXES = ("_original", "_run")  # ORIGINAL_SUFFIX, run_field()


def field_names(fields: Path = FIELDS) -> dict[str, str]:
    """``{value: constant name}`` of every string constant ``core/fields.py`` defines."""
    out = {}
    for node in ast.parse(fields.read_text()).body:
        if not isinstance(node, ast.Assign):
            continue
        target = node.targets[0]
        targets = target.elts if isinstance(target, ast.Tuple) else [target]
        values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
        for t, v in zip(targets, values):
            if isinstance(t, ast.Name) and isinstance(v, ast.Constant) and isinstance(v.value, str):
                out[v.value] = t.id
    return out


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def literal_names(package: Path = PACKAGE, fields: Path = FIELDS) -> list[str]:
    names = {v: k for v, k in field_names(fields).items() if v not in NOT_SEARCHED and v not in SUFFIXES}
    found = []
    for path in sorted(package.rglob("*.py")):
        if path == fields:
            continue
        tree = ast.parse(path.read_text(), str(path))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in docs:
                continue
            text = node.value
            hits = [names[p] for p in text.split(".") if p in names]
            if any(text.startswith(s) or text.endswith(s) for s in SUFFIXES) and text.strip("_").isidentifier():
                hits.append("ORIGINAL_SUFFIX / run_field")
            if hits:
                found.append(f"{path.relative_to(package.parent)}:{node.lineno}: {text!r} (use {', '.join(hits)})")
    return found


def test_dataset_names_are_spelled_only_in_core_fields():
    found = literal_names()
    assert not found, "names of core/fields.py written as literals:\n  " + "\n  ".join(found)


def test_the_search_sees_each_kind_of_literal(tmp_path):
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "fields.py").write_text('GT_FIELD = "ground_truth"\nSOURCE_FIELD, SOURCE_SCORE = "source_field", '
                                                 '"source_score"\nORIGINAL_SUFFIX = "_original"\nDEFAULT_EVAL_KEY = "eval"\n')
    (tmp_path / "leaky.py").write_text(
        'a = "ground_truth"\n'
        'b = f"{name}.detections.source_field"\n'
        'c = f"{name}_original"\n'
        'd = doc.get("source_score")\n')
    (tmp_path / "fine.py").write_text(
        '"""Reads ground_truth and its ground_truth_original snapshots."""\n'
        'from core.fields import GT_FIELD\n'
        'mode = "eval"\n'
        'path = f"{GT_FIELD}.detections.label"\n'
        'msg = "no ground truth here"\n')
    found = literal_names(tmp_path, tmp_path / "core" / "fields.py")
    assert [line.split(":")[1] for line in found] == ["1", "2", "3", "4"], found
    assert all("leaky.py" in line for line in found)
