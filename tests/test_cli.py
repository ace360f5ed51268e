"""The CLI in a separate process: help, version, import, and one clear line for bad input."""

import json

import pytest

from conftest import run_cli

from maskreview import __version__


def test_help_and_version():
    out = run_cli("--help", check=True).stdout
    for command in ("open", "import", "demo-data", "infer", "eval", "train", "models"):
        assert command in out
    assert run_cli("--version", check=True).stdout.strip() == f"maskreview {__version__}"


def test_import_prints_counts_and_reuses(fo, demo_coco):
    out = run_cli("import", str(demo_coco), "--name", "cli-demo", check=True).stdout
    assert out.startswith("dataset cli-demo: 12 samples")
    expected = len(json.loads(demo_coco.read_text())["annotations"])
    assert f"ground_truth: {expected}" in out
    again = json.loads(run_cli("import", str(demo_coco), "--name", "cli-demo", "--json", check=True).stdout)
    assert again == {"name": "cli-demo", "samples": 12, "instances": {"ground_truth": expected}}
    assert fo.list_datasets().count("cli-demo") == 1


def test_demo_data_command(tmp_path):
    out = run_cli("demo-data", "--out", str(tmp_path / "d"), "--n", "3", "--seed", "9", check=True).stdout
    assert out.strip().endswith("annotations.json")
    assert len(list((tmp_path / "d" / "images").glob("*.png"))) == 3


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("make,fragment", [
    (lambda t: t / "nope", "no such file, folder or FiftyOne dataset"),
    (lambda t: _write(t / "x.json", "not json at all"), "not valid JSON"),
    (lambda t: _write(t / "e" / "zero.png", ""), "empty file (0 bytes)"),
    (lambda t: _write(t / "u" / "junk.jpg", "this is text, not a jpeg"), "not a readable image"),
    (lambda t: _write(t / "c.json", json.dumps({"images": [{"id": 1, "file_name": "gone.png", "width": 4,
                                                            "height": 4}], "annotations": [], "categories": []})),
     "images not found"),
])
def test_bad_input_is_one_line_exit_2(fo, tmp_path, make, fragment):
    target = make(tmp_path)
    before = set(fo.list_datasets())
    proc = run_cli("import", str(target))
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "Warning" not in line
             and "warn" not in line]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("maskreview: error: ") and fragment in lines[0]
    assert "Traceback" not in proc.stderr
    assert set(fo.list_datasets()) == before
