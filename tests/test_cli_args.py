"""Arguments are checked at parse time: a bad number or output folder is one line and exit 2 (issue #12.4)."""

import pytest

from conftest import run_cli

from maskreview.cli import build_parser, main
from maskreview.core.errors import BadInputError

BAD_ARGUMENTS = [
    ("infer x --batch-size 0", "--batch-size"),
    ("infer x --batch-size -3", "--batch-size"),
    ("infer x --batch-size many", "--batch-size"),
    ("infer x --score-thresh 1.5", "--score-thresh"),
    ("infer x --score-thresh nan", "--score-thresh"),
    ("infer x --nms-thresh -0.1", "--nms-thresh"),
    ("infer x --max-dets 0", "--max-dets"),
    ("train x --out {tmp}/m --batch 0", "--batch"),
    ("train x --out {tmp}/m --lr -0.01", "--lr"),
    ("train x --out {tmp}/m --lr 0", "--lr"),
    ("train x --out {tmp}/m --lr inf", "--lr"),
    ("train x --out {tmp}/m --iters 0", "--iters"),
    ("train x --out {tmp}/m --holdout 1", "--holdout"),
    ("train x --out {tmp}/m --holdout -0.2", "--holdout"),
    ("train x --out {tmp}/m --checkpoint-period 0", "--checkpoint-period"),
    ("train x --out {tmp}/m --log-period -1", "--log-period"),
    ("train x --out {tmp}/a_file", "--out"),
    ("demo-data --out {tmp}/d --n 0", "--n"),
    ("demo-data --out {tmp}/d --n -5", "--n"),
    ("demo-data --out {tmp}/d --n 1.5", "--n"),
    ("demo-data --out {tmp}/d --size 0", "--size"),
    ("demo-data --out {tmp}/d --size 100000", "--size"),
    ("demo-data --out {tmp}/d --seed -1", "--seed"),
    ("demo-data --out {tmp}/a_file", "--out"),
    ("demo-data --out {tmp}/a_file/d", "--out"),
    ("eval x --iou-thresh 0", "--iou-thresh"),
    ("eval x --iou-thresh 1.01", "--iou-thresh"),
    ("explain i.png --out {tmp}/a_file", "--out"),
    ("explain i.png --out {tmp}/e --top-k 0", "--top-k"),
    ("explain i.png --out {tmp}/e --instance -1", "--instance"),
    ("app x --port 0", "--port"),
    ("app x --port 65536", "--port"),
    ("app x --port web", "--port"),
]


@pytest.mark.parametrize("command,argument", BAD_ARGUMENTS, ids=[c for c, _ in BAD_ARGUMENTS])
def test_a_bad_argument_is_one_line_and_exit_2(command, argument, tmp_path, capsys):
    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(SystemExit) as stop:
        main(command.format(tmp=tmp_path).split())
    assert stop.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"maskreview: error: argument {argument}") and captured.out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # nothing was written


def test_limits_are_inclusive_where_they_should_be(tmp_path):
    parser = build_parser()
    args = parser.parse_args(["demo-data", "--out", str(tmp_path), "--size", "32", "--n", "1"])
    assert (args.size, args.n) == (32, 1)
    assert parser.parse_args(["demo-data", "--out", str(tmp_path), "--size", "8192"]).size == 8192
    args = parser.parse_args(["infer", "x", "--score-thresh", "0", "--nms-thresh", "1", "--batch-size", "1"])
    assert (args.score_thresh, args.nms_thresh, args.batch_size) == (0.0, 1.0, 1)
    args = parser.parse_args(["train", "x", "--out", str(tmp_path / "new" / "m"), "--holdout", "0", "--lr", "1e-4"])
    assert (args.holdout, args.lr) == (0.0, 1e-4)


def test_help_still_prints_the_usage(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["infer", "--help"])
    assert stop.value.code == 0 and "--batch-size" in capsys.readouterr().out


def test_unknown_commands_and_missing_arguments_are_one_line(capsys):
    for argv in (["bogus"], ["infer"], ["train", "x"]):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        lines = capsys.readouterr().err.strip().splitlines()
        assert stop.value.code == 2 and len(lines) == 1 and lines[0].startswith("maskreview: error: ")


# ------------------------------------------------------------------ train --opts, checked before any work

@pytest.fixture
def dataset(fo, demo_coco):
    from maskreview.core.sources import open_source

    return open_source(demo_coco, name="opts-test")


@pytest.mark.parametrize("opts,problem", [
    (["SEED"], "odd number"),
    (["SEED", "3", "SOLVER.BASE_LR"], "odd number"),
    (["NO.SUCH_KEY", "1"], "Non-existent key"),
    (["SEED", "abc"], "Type mismatch"),
    (["SOLVER.STEPS", "5"], "Type mismatch"),
    (["SOLVER.IMS_PER_BATCH", "0"], "must be at least 1"),
    (["SOLVER.BASE_LR", "-0.5"], "must be above 0"),
])
def test_bad_opts_stop_before_training(opts, problem, dataset, tiny_model, tmp_path):
    from maskreview.core.model.training import TrainSettings, train

    with pytest.raises(BadInputError, match=problem) as err:
        train(dataset, "ground_truth", str(tiny_model), tmp_path / "m", TrainSettings(iters=2, opts=opts))
    assert str(err.value).startswith("--opts ") and "\n" not in str(err.value)
    assert not (tmp_path / "m").exists()


def test_bad_opts_through_the_cli_are_one_line(dataset, tiny_model, tmp_path):
    proc = run_cli("train", dataset.name, "--base", str(tiny_model), "--out", str(tmp_path / "m"),
                   "--opts", "MODEL.NO_SUCH_KEY", "1")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith("maskreview: error: --opts MODEL.NO_SUCH_KEY 1")
    assert not (tmp_path / "m").exists()
