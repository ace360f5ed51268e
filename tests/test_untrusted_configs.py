"""Model configs are data: a YAML Python tag never runs, wherever the config comes from (issue #12)."""

from pathlib import Path

import pytest

from conftest import run_cli

from maskreview.core.errors import BadInputError
from maskreview.core.model.safe_loading import UntrustedConfigError, load_config

TAG = "!!python/object/apply:builtins.open"
OUTER_TAG = "!!python/object/apply:builtins.str"  # the first tag a loader meets, so the one named


def booby_trapped_config(folder: Path, name: str = "evil.yaml") -> tuple[Path, Path]:
    """A config whose tag creates ``pwned`` when a YAML loader constructs it (a valid config otherwise)."""
    pwned = folder / "pwned"
    config = folder / name
    config.write_text(f"MODEL:\n  WEIGHTS: !!python/object/apply:builtins.str [{TAG} [{str(pwned)!r}, 'w']]\n")
    return config, pwned


def _as_model_yaml(tmp_path):
    config, pwned = booby_trapped_config(tmp_path)
    return str(config), config, pwned


def _as_base(tmp_path):
    config, pwned = booby_trapped_config(tmp_path)
    child = tmp_path / "child.yaml"
    child.write_text("_BASE_: evil.yaml\nMODEL:\n  MASK_ON: true\n")
    return str(child), config, pwned


def _as_model_folder(tmp_path, tiny_model):
    folder = tmp_path / "colleagues_model"
    folder.mkdir()
    config, pwned = booby_trapped_config(folder, "config.yaml")
    for name in ("model_final.pth", "classes.json"):
        (folder / name).write_bytes((tiny_model / name).read_bytes())
    return str(folder), config, pwned


@pytest.mark.parametrize("given_as", ["model_yaml", "base_of_a_config", "model_folder"])
def test_a_config_with_a_python_tag_is_refused_and_runs_nothing(given_as, tmp_path, tiny_model, demo_coco, fo):
    before = set(fo.list_datasets())
    model, config, pwned = {"model_yaml": lambda: _as_model_yaml(tmp_path),
                            "base_of_a_config": lambda: _as_base(tmp_path),
                            "model_folder": lambda: _as_model_folder(tmp_path, tiny_model)}[given_as]()

    proc = run_cli("infer", str(demo_coco), "--model", model, "--device", "cpu")

    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith("maskreview: error: ") and str(config) in lines[0] and OUTER_TAG in lines[0]
    assert "--trust-checkpoint" in lines[0]
    assert not pwned.exists()
    assert set(fo.list_datasets()) == before


def test_trusting_the_config_lets_its_tag_run(tmp_path):
    config, pwned = booby_trapped_config(tmp_path)
    with pytest.raises(UntrustedConfigError):
        load_config(config)
    assert not pwned.exists()
    cfg = load_config(config, trust_config=True)
    assert pwned.exists() and str(pwned) in cfg.MODEL.WEIGHTS


def test_the_trust_flag_reaches_the_config_loader_from_the_cli(tmp_path, demo_coco):
    config, pwned = booby_trapped_config(tmp_path)
    proc = run_cli("infer", str(demo_coco), "--model", str(config), "--device", "cpu", "--trust-checkpoint")
    assert pwned.exists()
    assert proc.returncode == 2 and OUTER_TAG not in proc.stderr  # it fails later, on the weights it names


def test_training_from_a_booby_trapped_base_is_refused(tmp_path, fo, demo_coco):
    from maskreview.core.sources import open_source
    from maskreview.core.model.training import train

    dataset = open_source(demo_coco, name="untrusted-base")
    config, pwned = booby_trapped_config(tmp_path)
    with pytest.raises(UntrustedConfigError, match="builtins.str"):
        train(dataset, "ground_truth", str(config), tmp_path / "out")
    assert not pwned.exists() and not (tmp_path / "out").exists()


def test_the_shipped_and_zoo_configs_load_as_plain_data():
    from maskreview.core.model import registry as models

    load_config(models.DEMO_MODEL_DIR / "config.yaml")
    load_config(models.resolve_model("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x").config_file)


def test_a_missing_base_is_one_bad_input_error(tmp_path):
    child = tmp_path / "child.yaml"
    child.write_text("_BASE_: nowhere.yaml\n")
    with pytest.raises(BadInputError, match="child.yaml: not a usable detectron2 config"):
        load_config(child)


def test_configs_and_checkpoints_are_read_only_through_the_safe_loaders():
    """A new call to one of these elsewhere would bypass load_config / load_checkpoint_file."""
    import re

    from conftest import REPO

    unsafe = re.compile(r"merge_from_file|load_yaml_with_base|yaml\.(unsafe_)?load\(|torch\.load\(|(?<!plain_)pickle\.loads?\("
                        r"|DetectionCheckpointer\(|model_zoo\.get")
    offenders = [f"{path.relative_to(REPO)}:{n}" for path in (REPO / "maskreview").rglob("*.py")
                 if path.relative_to(REPO).as_posix() != "maskreview/core/model/safe_loading.py" for n, line in enumerate(path.read_text().splitlines(), 1)
                 if unsafe.search(line) and not line.lstrip().startswith("#")]
    assert offenders == []


def test_fine_tuning_a_model_folder_with_a_booby_trapped_config_is_refused(tmp_path, tiny_model, fo, demo_coco):
    from maskreview.core.model.finetune import finetune_on_corrected
    from maskreview.core.sources import open_source

    dataset = open_source(demo_coco, name="untrusted-finetune")
    dataset.limit(3).tag_samples("reviewed")
    folder, _, pwned = _as_model_folder(tmp_path, tiny_model)
    with pytest.raises(UntrustedConfigError, match="config.yaml"):
        finetune_on_corrected(dataset, folder, tmp_path / "out", iters=1)
    assert not pwned.exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", ["[1, 2]", '{"a": 1}', "not json", '"a string"', "[null]"])
def test_a_damaged_model_registry_counts_as_empty(content, tmp_path, monkeypatch):
    from maskreview.core.model import registry as models

    registry = tmp_path / "local_models.json"
    registry.write_text(content)
    monkeypatch.setattr(models, "_registry_file", lambda: registry)
    monkeypatch.setattr(models, "user_models_dir", lambda: tmp_path / "no-models")
    assert models.local_models() == []
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.yaml").write_text("MODEL:\n  MASK_ON: true\n")
    models.register_local_model(tmp_path / "m")
    assert models.local_models() == [(tmp_path / "m").resolve()]
