"""A model split by a device map (the 72B path) gives the unmapped model's logits and generations.

The tiny HF-layout LLaVA-OV checkpoint of the rehearsal is loaded twice: on one device, and with an
explicit device map that keeps the embeddings, the vision tower, the first and last decoder layers,
the final norm and the LM head on the CPU and offloads the middle decoder layers to disk
(accelerate's hooks load their weights on use). The runtime's own layer loop, KV cache and the
inner-LLM scoring (which calls a layer's projections directly) must give the same prefill logits
and the same greedy tokens, with and without pruning inside the LLM. Needs accelerate (extra
``multigpu``; also in ``test``).
"""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("accelerate")

from replicate.paper.checkpoints import PaperInputError, load_adapter, resolve_device_map  # noqa: E402
from replicate.paper.rehearsal import write_llava_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_llava_checkpoint(tmp_path_factory.mktemp("ckpt") / "llava-onevision-72b", seed=3)


def _config(path, device_map, offload):
    return {"paths": {"checkpoints": {"llava-onevision-72b": str(path)}},
            "paper": {"device_map": device_map, "offload_dir": str(offload)}}


def _split_map(adapter) -> dict:
    """Embeddings, tower, projector, first and last decoder layer, norm and head on the CPU; the
    decoder layers in between on disk."""
    n = len(adapter.lm.layers)
    out = {"model.vision_tower": "cpu", "model.multi_modal_projector": "cpu", "model.image_newline": "cpu",
           "model.language_model.embed_tokens": "cpu", "model.language_model.norm": "cpu",
           "model.language_model.rotary_emb": "cpu", "lm_head": "cpu"}
    for i in range(n):
        out[f"model.language_model.layers.{i}"] = "cpu" if i in (0, n - 1) else "disk"
    return out


def _run(adapter, method):
    from methods.pipeline import run

    torch.manual_seed(0)
    frames = torch.randn(4, 3, adapter.image_size, adapter.image_size)
    return run(adapter, method, frames, "Which colour is shown?", decode_steps=6)


@pytest.mark.parametrize("method_name, options", [("vanilla", {}), ("fastv", {"k": 2, "keep": 0.5}),
                                                  ("holitom", {"retention": 0.5, "inner_k": 2, "inner_r": 0.5})])
def test_device_map_with_disk_offload_equals_the_unmapped_model(checkpoint, tmp_path, method_name, options):
    from methods.registry import get_method

    plain, _ = load_adapter(_config(checkpoint, "none", tmp_path), "llava-onevision-72b")
    mapped, info = load_adapter(_config(checkpoint, _split_map(plain), tmp_path / "offload"), "llava-onevision-72b")
    assert info["device_map"] == "explicit"
    middle = mapped.lm.layers[1].self_attn.q_proj.weight
    assert middle.device.type == "meta"  # really offloaded: loaded by accelerate's hook on use
    method = None if method_name == "vanilla" else get_method(method_name, **options)
    a, b = _run(plain, method), _run(mapped, method)
    assert torch.allclose(a.logits, b.logits, atol=1e-5, rtol=1e-5)
    assert list(a.tokens) == list(b.tokens)
    assert list(a.schedule.llm_visual) == list(b.schedule.llm_visual)


def test_device_map_is_auto_only_with_several_gpus_and_refused_where_unsupported(checkpoint, tmp_path):
    assert resolve_device_map({"paper": {}}, "cpu") is None
    assert resolve_device_map({"paper": {"device_map": "none"}}, "cuda") is None
    assert resolve_device_map({"paper": {"device_map": {"": "cpu"}}}, "cpu") == {"": "cpu"}
    if torch.cuda.device_count() < 2:
        assert resolve_device_map({"paper": {}}, "cuda") is None
    (checkpoint.parent / "molmo").mkdir(exist_ok=True)
    (checkpoint.parent / "molmo" / "config.json").write_text('{"model_type": "molmo2"}')
    cfg = {"paths": {"checkpoints": {"molmo2-4b": str(checkpoint.parent / "molmo")}},
           "paper": {"device_map": {"": "cpu"}}}
    with pytest.raises(PaperInputError, match="device map is supported for LLaVA checkpoints only"):
        load_adapter(cfg, "molmo2-4b")


def test_the_72b_cells_ask_for_enough_gpus():
    from replicate.paper import cells as C

    cell = C.Cell("llava-onevision-72b", "llava-onevision-72b", 32, "vanilla", None, (), "videomme", "videomme",
                  "holitom-lmms-eval-0.3.0")
    small = C.Cell("llava-onevision-7b", "llava-onevision-7b", 32, "vanilla", None, (), "videomme", "videomme",
                   "holitom-lmms-eval-0.3.0")
    assert C.gpus_for(cell, {"paper": {"gpus": 1, "gpu_memory_gb": 80}}) == 3    # 1.25 x 146.4 GB / 80 GB
    assert C.gpus_for(cell, {"paper": {"gpus": 1, "gpu_memory_gb": 141}}) == 2   # H200
    assert C.gpus_for(small, {"paper": {"gpus": 1, "gpu_memory_gb": 80}}) == 1
    assert C.gpus_for(cell, {"paper": {"gpus": 0}}) == 0                          # CPU rehearsal
