"""Bytes a training step keeps for the backward pass, measured per token per layer at full width.

One layer of Molmo2-4B's ViT (so400m width) and one of its LLM (Qwen3-4B width), built from
transformers' own classes with random weights on the CPU in bf16, run forward over a few token
counts; every tensor autograd saves for the backward pass is recorded through
``torch.autograd.graph.saved_tensors_hooks`` (parameters excluded: they are the weights, counted
apart; storages counted once). The slope over the token counts is the bytes per token per layer:

- ``plain``: everything the layer saves (no activation checkpointing);
- ``checkpointed``: the layer wrapped in ``torch.utils.checkpoint`` as Molmo2's trainer wraps every
  ViT and LLM block (``activation_checkpointing=True``, whole-layer mode), which keeps only the
  layer's input until the backward pass recomputes the rest.

The CPU runs SDPA through its flash kernel (saved: q, k, v, output, log-sum-exp), as CUDA's flash /
memory-efficient kernels do, so the bytes carry over to a GPU. ``costmodel.memory``'s training-peak
formula is held against these numbers (tests/costmodel).

    python -m replicate.harness.activation_memory   # prints the JSON
"""
from __future__ import annotations

import json
from typing import Callable, Sequence

import torch
from torch.utils.checkpoint import checkpoint


def saved_bytes(fn: Callable[[], torch.Tensor], exclude: Sequence[torch.Tensor] = ()) -> int:
    """Bytes of the distinct storages autograd saves while ``fn()`` runs (``exclude``: parameters)."""
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        storage = t.untyped_storage()
        if storage.data_ptr() not in skip:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    del out
    return sum(seen.values())


def _slope(points: Sequence[tuple[int, int]]) -> float:
    (x0, y0), (x1, y1) = points[0], points[-1]
    return (y1 - y0) / (x1 - x0)


def _measure(layer: torch.nn.Module, make_input: Callable[[int], tuple], tokens: Sequence[int],
             checkpointed: bool) -> dict:
    params = list(layer.parameters())
    points = []
    for n in tokens:
        args, kwargs = make_input(n)
        x = args[0].requires_grad_(True)
        if checkpointed:  # reentrant: a Function whose saved tensors are the inputs, visible to the hooks
            run = lambda: checkpoint(lambda *a: layer(*a, **kwargs), x, *args[1:], use_reentrant=True)
        else:
            run = lambda: layer(x, *args[1:], **kwargs)
        points.append((n, saved_bytes(run, exclude=params)))
    return {"bytes_per_token": _slope(points), "points": points}


def vit_layer(arch: str = "molmo2-4b", dtype=torch.bfloat16, tokens: Sequence[int] = (729, 1458, 2187)) -> dict:
    """One ViT block of ``arch`` over 1, 2, 3 frames of 729 patches (frames are the batch)."""
    from transformers.models.molmo2.modeling_molmo2 import Molmo2VisionEncoderLayer

    from methods.adapters.molmo2_loading import hf_config

    cfg = hf_config(arch).vision_config
    cfg._attn_implementation = "sdpa"
    layer = Molmo2VisionEncoderLayer(cfg).to(dtype).train()
    per_frame = tokens[0]
    g = torch.Generator().manual_seed(0)
    make = lambda n: ((torch.randn(n // per_frame, per_frame, cfg.hidden_size, generator=g, dtype=dtype), None), {})
    return {"layer": "vit", "hidden": cfg.hidden_size, "intermediate": cfg.intermediate_size,
            "plain": _measure(layer, make, tokens, False), "checkpointed": _measure(layer, make, tokens, True)}


def llm_layer(arch: str = "molmo2-4b", dtype=torch.bfloat16, tokens: Sequence[int] = (256, 512, 768)) -> dict:
    """One LLM decoder layer of ``arch`` over a causal prompt of ``tokens`` tokens."""
    from transformers.models.molmo2.modeling_molmo2 import Molmo2DecoderLayer, Molmo2RotaryEmbedding

    from methods.adapters.molmo2_loading import hf_config

    cfg = hf_config(arch).text_config
    cfg._attn_implementation = "sdpa"
    layer = Molmo2DecoderLayer(cfg, layer_idx=0).to(dtype).train()
    rope = Molmo2RotaryEmbedding(cfg)
    g = torch.Generator().manual_seed(0)

    def make(n):
        x = torch.randn(1, n, cfg.hidden_size, generator=g, dtype=dtype)
        pos = torch.arange(n)[None]
        cos, sin = rope(x, pos)
        mask = torch.full((n, n), float("-inf"), dtype=dtype).triu_(1)[None, None]
        return (x,), {"position_embeddings": (cos, sin), "attention_mask": mask, "position_ids": pos}

    return {"layer": "llm", "hidden": cfg.hidden_size, "intermediate": cfg.intermediate_size,
            "plain": _measure(layer, make, tokens, False), "checkpointed": _measure(layer, make, tokens, True)}


def measure(arch: str = "molmo2-4b") -> dict:
    import transformers

    torch.manual_seed(0)
    return {"arch": arch, "dtype": "bf16", "device": "cpu", "attention": "sdpa",
            "torch": torch.__version__, "transformers": transformers.__version__,
            "vit": vit_layer(arch), "llm": llm_layer(arch)}


if __name__ == "__main__":
    from costmodel.cli import Parser

    Parser(prog="python -m replicate.harness.activation_memory", description=__doc__.split("\n\n")[0]).parse_args()
    print(json.dumps(measure(), indent=1))
