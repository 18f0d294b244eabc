"""A smoke-trained SynthVideoQA checkpoint, trained once per session in a temporary directory."""
from __future__ import annotations

from dataclasses import replace

import pytest


@pytest.fixture(scope="session")
def smoke_model_dir(tmp_path_factory):
    """The --smoke training config with its step count cut to 3 (the tests need a real trained
    checkpoint on disk, not a good one) and 2 threads: ~10 s."""
    from replicate.synthvqa.train import smoke_config, train

    out = tmp_path_factory.mktemp("harness") / "model"
    cfg = replace(smoke_config(), steps=3, threads=2, n_val=2, n_test=2)
    train(cfg, out, log=lambda *a, **k: None)
    return out
