"""Class 3 of issue 27: every number is finite, in range and whole where a count is meant, at parse
time; training never writes non-finite weights; sizes the machine cannot hold are refused with the
predicted memory before anything is allocated.

The argparse types (``costmodel.cli``) are checked directly and through the STTS trainer's command
line (in-process: a refused argument never builds a model); the config's numbers through
``check_all`` (the workflow's check) and ``python -m replicate.configuration``.
"""
from __future__ import annotations

import argparse
import math

import pytest

from costmodel.cli import finite_float, integer, name_list, number_list, out_dir, out_file

NAN, INF = float("nan"), float("inf")


# ---------------------------------------------------------------------------------- argparse types
@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf", "1e400", "abc", "", "0x1p3"])
def test_finite_float_refuses_what_is_not_a_finite_number(text):
    with pytest.raises(argparse.ArgumentTypeError):
        finite_float()(text)


@pytest.mark.parametrize("text,kw", [("0", dict(lo=0, lo_open=True)), ("1", dict(hi=1, hi_open=True)),
                                     ("-0.1", dict(lo=0)), ("10.5", dict(hi=10))])
def test_finite_float_bounds(text, kw):
    with pytest.raises(argparse.ArgumentTypeError, match="must be"):
        finite_float(**kw)(text)


def test_finite_float_accepts_inside_the_bounds():
    assert finite_float(0, 1, lo_open=True)("0.25") == 0.25 and finite_float()("-3") == -3.0


@pytest.mark.parametrize("text", ["2.0", "1e3", "nan", "inf", "1.5", "", "two", "0x10", "+"])
def test_integer_refuses_what_is_not_a_whole_number(text):
    with pytest.raises(argparse.ArgumentTypeError, match="not a whole number"):
        integer()(text)


@pytest.mark.parametrize("text,lo,hi", [("0", 1, None), ("-1", 0, None), ("1001", 1, 1000)])
def test_integer_bounds(text, lo, hi):
    with pytest.raises(argparse.ArgumentTypeError, match="outside the allowed range"):
        integer(lo, hi)(text)


def test_integer_accepts_whole_numbers():
    assert integer(0)("7") == 7 and integer()("-3") == -3 and integer(1, 5)(" 5 ") == 5


@pytest.mark.parametrize("text,needle", [("1,1", "more than once"), ("1,,2", "empty item"), (",", "empty item"),
                                         ("1,nan", "finite"), ("", "empty item")])
def test_number_lists(text, needle):
    with pytest.raises(argparse.ArgumentTypeError, match=needle):
        number_list(finite_float())(text)


def test_number_list_dedupe_notice(capsys):
    assert number_list(integer(1), dedupe=True)("2,1,2") == [2, 1]
    assert "duplicate(s) ['2']" in capsys.readouterr().err


def test_name_list_refuses_unknown_and_duplicates():
    parse = name_list(["a", "b"])
    with pytest.raises(argparse.ArgumentTypeError, match=r"unknown \['c'\]; allowed: a, b"):
        parse("a,c")
    with pytest.raises(argparse.ArgumentTypeError, match="more than once"):
        parse("a,a")


@pytest.mark.parametrize("case", ["empty", "file", "under-a-file"])
def test_out_dir_must_name_a_directory(tmp_path, case):
    f = tmp_path / "f.txt"
    f.write_text("x")
    value = {"empty": "", "file": str(f), "under-a-file": str(f / "sub")}[case]
    with pytest.raises(argparse.ArgumentTypeError):
        out_dir(value)


def test_out_file_must_name_a_file(tmp_path):
    with pytest.raises(argparse.ArgumentTypeError, match="is a directory"):
        out_file(str(tmp_path))
    with pytest.raises(argparse.ArgumentTypeError, match="empty path"):
        out_file("")
    assert out_file(str(tmp_path / "new" / "x.json")).name == "x.json"


# ---------------------------------------------------------------------------------- the STTS trainer
STTS_BAD = [
    (["--grad-clip", "nan"], "--grad-clip"), (["--aux-coef", "nan"], "--aux-coef"), (["--lr", "inf"], "--lr"),
    (["--grad-clip", "-1"], "--grad-clip"), (["--lr", "nan"], "--lr"), (["--weight-decay", "nan"], "--weight-decay"),
    (["--prune-at", "1.5"], "--prune-at"), (["--prune-at", "-1"], "--prune-at"), (["--steps", "0"], "--steps"),
    (["--steps", "2.0"], "--steps"), (["--topk", "1"], "--topk"), (["--topk", "0"], "--topk"),
    (["--batch-size", "0"], "--batch-size"), (["--lr", "0"], "--lr"), (["--frames", "1e9"], "--frames"),
    (["--dtype", "fp8"], "--dtype"), (["--out", ""], "--out"),
]


@pytest.mark.parametrize("argv,needle", STTS_BAD, ids=[" ".join(a) for a, _ in STTS_BAD])
def test_stts_train_refuses_bad_numbers_at_parse_time(tmp_path, capsys, argv, needle):
    from replicate.stts_train.__main__ import main

    args = ["--out", str(tmp_path / "run"), *argv]
    with pytest.raises(SystemExit) as exc:
        main(args)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()  # refused before anything was written


@pytest.mark.parametrize("kw,needle", [({"lr": NAN}, "lr"), ({"grad_clip": -1.0}, "grad_clip"),
                                       ({"aux_coef": INF}, "aux_coef"), ({"steps": 2.5}, "steps"),
                                       ({"prune_at": True}, "prune_at"), ({"weight_decay": NAN}, "weight_decay")])
def test_stts_train_config_refuses_bad_numbers_from_python(kw, needle):
    from replicate.stts_train.loop import STTSTrainConfig

    with pytest.raises(ValueError, match=needle):
        STTSTrainConfig(**kw)


def test_a_missing_model_directory_is_one_line(tmp_path, capsys):
    from replicate.stts_train.__main__ import main

    with pytest.raises(SystemExit) as exc:
        main(["--out", str(tmp_path / "run"), "--model-dir", str(tmp_path / "nope"), "--no-progress"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "synthvqa.json" in err and str(tmp_path / "nope") in err


def test_training_stops_at_the_step_whose_loss_is_not_finite(tmp_path, monkeypatch):
    """A NaN loss at step 2 stops training before that step's update; the last checkpoint is the
    one of step 1 and no scorer.pt is written."""
    import torch

    from replicate.stts_train import loop

    real = loop.Molmo2Task.losses
    calls = {"n": 0}

    def losses(self, sample):
        lm, aux, kept = real(self, sample)
        calls["n"] += 1
        return (lm * float("nan") if calls["n"] > 1 else lm), aux, kept  # batch size 1: step 2 is call 2

    monkeypatch.setattr(loop.Molmo2Task, "losses", losses)
    cfg = loop.STTSTrainConfig(backbone="molmo2", model_dir="tiny", data="synthetic", steps=3, batch_size=1,
                               save_every=1, n_train=4)
    with pytest.raises(loop.NonFiniteTraining, match=r"step 2: the LM loss .*non-finite"):
        loop.train(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "scorer.pt").exists()
    saved = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert saved["step"] == 1 and all(torch.isfinite(v).all() for v in saved["scorer"].values())


def test_weights_that_became_non_finite_are_named_with_the_step():
    import torch

    from replicate.stts_train.loop import NonFiniteTraining, check_finite_weights

    params = [torch.zeros(2), torch.tensor([1.0, math.inf])]
    with pytest.raises(NonFiniteTraining, match=r"step 7: trainable tensor 1 \(2,\) holds NaN/inf"):
        check_finite_weights(7, params)
    check_finite_weights(7, [torch.zeros(3)])


# ---------------------------------------------------------------------------------- the workflow config
def _check(override):
    from replicate.configuration import check_all, deep_merge, load_config

    check_all(deep_merge(load_config(), override))


CONFIG_BAD = [
    ({"stts": {"train": {"steps": 2.0}}}, "stts.train.steps", "integer"),
    ({"cpu": {"n_samples": 4.0}}, "cpu.n_samples", "integer"),
    ({"seeds": [1.0]}, "seeds.0", "integer"),
    ({"paper": {"shards": 2.5}}, "paper.shards", "integer"),
    ({"holitom": {"bench": {"frames": 100000}}}, "holitom.bench.frames", "maximum"),
    ({"holitom": {"bench": {"dim": 10 ** 12}}}, "holitom.bench.dim", "maximum"),
    ({"cpu": {"n_samples": 10 ** 9}}, "cpu.n_samples", "maximum"),
    ({"paper": {"shards": 1000}}, "paper.shards", "maximum"),
    ({"paper": {"max_new_tokens": 10 ** 6}}, "paper.max_new_tokens", "maximum"),
    ({"stts": {"train": {"lr": 1e6}}}, "stts.train.lr", "maximum"),
    ({"stts": {"analytic": {"frames": 100000}}}, "stts.analytic.frames", "maximum"),
    ({"efficiency": {"cpu": {"decode_tokens": 10 ** 7}}}, "efficiency.cpu.decode_tokens", "maximum"),
    ({"stts": {"train": {"lr": NAN}}}, "stts.train.lr", "nan"),
    ({"efficiency": {"cpu": {"repeats": INF}}}, "efficiency.cpu.repeats", "inf"),
]


@pytest.mark.parametrize("override,key,needle", CONFIG_BAD, ids=[k for _, k, _ in CONFIG_BAD])
def test_config_numbers_are_whole_finite_and_bounded(override, key, needle):
    from replicate.configuration import ConfigError

    with pytest.raises(ConfigError) as exc:
        _check(override)
    assert key in str(exc.value) and needle in str(exc.value), str(exc.value)


def test_absurd_sizes_are_refused_with_the_predicted_memory():
    from replicate.configuration import check_predicted_memory
    from replicate.limits import LimitError

    cfg = {"holitom": {"bench": {"frames": 4096, "grid": 128, "dim": 65536}}}
    with pytest.raises(LimitError, match=r"holitom\.bench: frames 4096 x grid 128x128 x dim 65536 need about "
                                         r"[0-9.]+ GiB .*more than this machine's 24\.0 GiB"):
        check_predicted_memory(cfg, available=24 * 2 ** 30)
    check_predicted_memory({"holitom": {"bench": {"frames": 32, "grid": 14, "dim": 3584}}}, available=24 * 2 ** 30)


def test_the_machine_limit_is_applied_by_the_workflow_check():
    from replicate.configuration import ConfigError

    with pytest.raises(ConfigError, match="GiB"):
        _check({"holitom": {"bench": {"frames": 4096, "grid": 128, "dim": 65536}}})
