"""Tiny paper-tier inputs written into the test's temp dir: an HF-layout LLaVA-OV checkpoint, a
SigLIP checkpoint and benchmark fixtures (8-frame clips), plus a config pointing at them."""
from __future__ import annotations

import pytest

from replicate.benchmarks.fixtures import make_fixture
from replicate.paper import rehearsal


@pytest.fixture(scope="session")
def paper_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper_inputs")
    ckpt = rehearsal.write_llava_checkpoint(root / "ckpt" / "llava-onevision-7b", seed=0)
    siglip = rehearsal.write_siglip_checkpoint(root / "ckpt" / "siglip-so400m")
    data = {name: str(make_fixture(name, root / "data" / name, 3, n_frames=8, size=32, parquet=name == "videomme"))
            for name in ("videomme", "egoschema")}
    return {"root": root, "checkpoint": str(ckpt), "siglip": str(siglip), "datasets": data}


@pytest.fixture
def paper_config(paper_inputs):
    def make(**paper):
        return {"paths": {"checkpoints": {"llava-onevision-7b": paper_inputs["checkpoint"],
                                          "siglip-so400m": paper_inputs["siglip"]},
                          "datasets": dict(paper_inputs["datasets"])},
                "paper": {"answer": "option_logits", "device": "cpu", "rehearsal": True, **paper},
                "seeds": [0]}
    return make
