"""The STTS training loop (replicate.stts_train): determinism, resume, what trains, both backbones."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from replicate.stts_train import STTSTrainConfig, train
from replicate.stts_train.__main__ import main as cli


@pytest.fixture(scope="module")
def smoke_model_dir(tmp_path_factory):
    """A 3-step SynthVideoQA checkpoint (the loop needs a real checkpoint on disk, not a good one)."""
    from replicate.synthvqa.train import smoke_config, train as train_tiny

    out = tmp_path_factory.mktemp("stts_train") / "model"
    train_tiny(replace(smoke_config(), steps=3, threads=1, n_val=2, n_test=2), out, log=lambda *a, **k: None)
    return out


def _cfg(model_dir, **kw):
    base = dict(model_dir=str(model_dir), steps=4, batch_size=2, save_every=2, log_every=1, n_train=16, lr=3e-3)
    return STTSTrainConfig(**{**base, **kw})


def _scorer(path):
    return torch.load(path, weights_only=True)


def test_seeded_run_is_deterministic_and_resume_reproduces_it(smoke_model_dir, tmp_path):
    cfg = _cfg(smoke_model_dir)
    a = train(cfg, tmp_path / "a", progress=False)
    b = train(cfg, tmp_path / "b", progress=False)
    part = train(cfg, tmp_path / "c", progress=False, stop_after=2)
    assert part == {"steps": 2, "complete": False, "train_seconds": part["train_seconds"]}
    assert not (tmp_path / "c" / "scorer.pt").exists() and (tmp_path / "c" / "checkpoint.pt").exists()
    c = train(cfg, tmp_path / "c", progress=False)
    sa, sb, sc = (_scorer(tmp_path / d / "scorer.pt") for d in "abc")
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert all(torch.equal(sa[k], sc[k]) for k in sa), "resumed run differs from the uninterrupted one"
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in c["history"]]
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert m["steps"] == 4 and m["train_seconds"] > 0 and m["prune_at"] == 0 and m["group"] == 2


def test_lm_loss_alone_reaches_the_scorer_and_the_model_stays_frozen(smoke_model_dir, tmp_path):
    from replicate.harness.accuracy import load_checkpoint

    before = {k: v.clone() for k, v in load_checkpoint(smoke_model_dir)[0].model.state_dict().items()}
    cfg = _cfg(smoke_model_dir, aux_coef=0.0, steps=1)
    train(cfg, tmp_path / "lm", progress=False)
    from methods.stts_method import STTS, STTSMethodConfig

    adapter = load_checkpoint(smoke_model_dir)[0]
    init = STTS(STTSMethodConfig(topk=0.5, prune_at=0, seed=0)).scorer(adapter).state_dict()
    trained = _scorer(tmp_path / "lm" / "scorer.pt")
    changed = [k for k in init if not torch.equal(init[k], trained[k])]
    assert changed, "with aux_coef=0 only the attention bias carries gradient to the scorer"
    after = adapter.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_resume_refuses_a_checkpoint_of_another_configuration(smoke_model_dir, tmp_path):
    train(_cfg(smoke_model_dir, steps=2), tmp_path / "r", progress=False, stop_after=1)
    with pytest.raises(ValueError, match="different configuration"):
        train(_cfg(smoke_model_dir, steps=2, lr=1e-2), tmp_path / "r", progress=False)
    m = train(_cfg(smoke_model_dir, steps=2, lr=1e-2), tmp_path / "r", progress=False, on_mismatch="restart")
    assert m["steps"] == 2 and (tmp_path / "r" / "checkpoint.pt.stale").is_file()


@pytest.mark.molmo2
def test_tiny_molmo2_trains_end_to_end_for_a_few_steps(tmp_path):
    rc = cli(["--backbone", "molmo2", "--model-dir", "tiny", "--data", "synthetic", "--steps", "2",
              "--batch-size", "2", "--mode", "end-to-end", "--no-progress", "--out", str(tmp_path / "m")])
    assert rc == 0
    m = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert m["steps"] == 2 and m["prune_at"] == 3 and m["group"] == 3
    assert all(h["kept_pooled"] == 4 * 9 - round(9 * 0.5 * 4) for h in m["history"])
    from methods.adapters.molmo2 import Molmo2VideoAdapter

    init_adapter = Molmo2VideoAdapter.tiny(seed=0)  # random weights: its byte tokenizer, passed explicitly
    loaded = Molmo2VideoAdapter.from_pretrained(tmp_path / "m" / "model", tokenizer=init_adapter.tokenizer)
    tuned = loaded.model.state_dict()
    init = init_adapter.model.state_dict()
    assert any(not torch.equal(tuned[k], init[k]) for k in init)
    # the checkpoint carries the trained scorer, where the paper tier looks for it
    carried, trained = loaded.stts_scorer_state(), _scorer(tmp_path / "m" / "scorer.pt")
    assert carried is not None and all(torch.equal(carried[k], trained[k]) for k in trained)


@pytest.mark.molmo2
def test_bad_configuration_is_refused(tmp_path):
    with pytest.raises(ValueError, match="mode 'joint'"):
        STTSTrainConfig(mode="joint")
    with pytest.raises(ValueError, match="topk"):
        STTSTrainConfig(topk=0.0)
    with pytest.raises(ValueError, match="JSONL"):
        train(STTSTrainConfig(backbone="molmo2", model_dir="tiny", data=str(tmp_path / "none.jsonl")),
              tmp_path / "x", progress=False)
    with pytest.raises(SystemExit) as refused:  # argparse's type refuses it: one line, exit code 2
        cli(["--out", str(tmp_path / "y"), "--steps", "0"])
    assert refused.value.code == 2 and not (tmp_path / "y").exists()


def test_fidelity_is_checked_and_reaches_the_training_rules(smoke_model_dir, tmp_path):
    """``fidelity`` picks STTS's released or earlier bias/count rules for training as for inference;
    the two train different scorers from the same seed and data."""
    with pytest.raises(ValueError, match=r"fidelity must be one of \['released', 'project'\], got 'paper'"):
        STTSTrainConfig(fidelity="paper")
    with pytest.raises(SystemExit) as refused:  # one line naming the allowed values, exit code 2
        cli(["--out", str(tmp_path / "bad"), "--fidelity", "paper"])
    assert refused.value.code == 2
    assert STTSTrainConfig().fidelity == "released"
    scorers = {}
    for fidelity in ("released", "project"):
        train(_cfg(smoke_model_dir, fidelity=fidelity), tmp_path / fidelity, progress=False)
        scorers[fidelity] = _scorer(tmp_path / fidelity / "scorer.pt")
    assert any(not torch.equal(scorers["released"][k], scorers["project"][k]) for k in scorers["released"])
