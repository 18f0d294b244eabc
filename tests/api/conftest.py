"""Tiny checkpoints of the three families in the HF layout (config.json, safetensors, tokenizer and
processor files; random weights, ``replicate.paper.rehearsal``) and short solid-colour clips."""
from __future__ import annotations

import pytest

from replicate.benchmarks.fixtures import COLOURS, write_tiny_video
from replicate.paper import rehearsal


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("user_api_checkpoints")
    return {"llava-onevision": rehearsal.write_llava_checkpoint(root / "llava-ov", seed=0),
            "qwen2.5-vl": rehearsal.write_qwen2_5_vl_checkpoint(root / "qwen2.5-vl", seed=0),
            "molmo2": rehearsal.write_molmo2_checkpoint(root / "molmo2", seed=0)}


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    """Four 8-frame clips of different colours (32 px; each model resizes to its own size)."""
    root = tmp_path_factory.mktemp("user_api_clips")
    out = []
    for name in ("red", "green", "blue", "yellow"):
        path = root / f"{name}.mp4"
        if not write_tiny_video(path, COLOURS[name], n_frames=8, size=32):
            pytest.skip("PyAV cannot encode a video here")
        out.append(path)
    return out


#: load() keyword arguments of each family's tiny checkpoint (Qwen2.5-VL's frame size is an adapter
#: option: its processor resizes per video, the adapter to a fixed size; 112 px keeps it tiny)
LOAD_KW = {"llava-onevision": {}, "qwen2.5-vl": {"adapter_options": {"image_size": 112}}, "molmo2": {}}
#: a pruning method per family that is valid on the tiny depth, and the stage it prunes in
PRUNING = {"llava-onevision": ("holitom", {"retention": 0.5, "inner_k": 2}),
           "qwen2.5-vl": ("fastv", {"k": 2, "keep": 0.5}),
           "molmo2": ("random", {"retention": 0.5})}
QUESTIONS = ["What colour is the video?", "Describe what you see, then name the colour of the frames.",
             "Why?", "Is anything moving in this clip, and if so, what?"]


@pytest.fixture(scope="session")
def family_setup():
    """family -> (load() keyword arguments, pruning method, its options)."""
    return {f: (LOAD_KW[f], *PRUNING[f]) for f in LOAD_KW}


@pytest.fixture(scope="session")
def questions():
    return list(QUESTIONS)
