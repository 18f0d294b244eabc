"""Random-weight models the efficiency harness times (timing does not depend on weight values)."""
from __future__ import annotations

from typing import Any

#: Mid-size random-weight LLaVA-OV for CPU timing: SigLIP 2 layers / hidden 128 at 224 px (16x16
#: patches -> 8x8 = 64 pooled tokens per frame), Qwen2 4 layers / hidden 512 / 8 heads / 2 KV heads
#: (GQA). At 32 frames the LLM sees 2048 + 1 video tokens: prefill ~0.5 s on 2 threads
#: (environment.md: 4-layer hidden-512 at 2000 tokens = 565 ms) and dominates TTFT.
CPU_BENCH_CONFIG: dict[str, Any] = dict(
    vision_config=dict(model_type="siglip_vision_model", hidden_size=128, intermediate_size=512,
                       num_hidden_layers=2, num_attention_heads=4, patch_size=14, image_size=224,
                       vision_use_head=False),
    text_config=dict(model_type="qwen2", hidden_size=512, intermediate_size=1408, num_hidden_layers=4,
                     num_attention_heads=8, num_key_value_heads=2, vocab_size=1000,
                     max_position_embeddings=8192, rope_theta=1000000.0),
    image_token_index=998, video_token_index=999,
    vision_feature_select_strategy="full", vision_feature_layer=-1)
CPU_BENCH_FRAMES = 32
#: Qwen2.5-VL-7B: 64 input frames = 32 temporal groups of the tower's Conv3d (temporal patch 2), the
#: 32 steps of costmodel/archs/qwen2.5-vl-7b.json (Tango's Qwen runs use nframe 64,
#: ``VLMEvalKit/qwen2p5_run_config/tango.json`` in xjtupanda/Tango), at its 448 px frames.
QWEN_FULL_SIZE_FRAMES = 64
QWEN_ARCHS = ("qwen2.5-vl-7b",)
#: full-size LLaVA architectures and their adapter setting; frames, pooling and newlines come from
#: costmodel/archs (LLaVA-Video-7B: 64 frames, 13x13 average pooling, grid newlines, docs/sources.md#llava-video-7b).
#: Tango runs its intra-LLM stage on LLaVA-Video (Tango.from_setting: the grid-newline layout).
LLAVA_ARCHS: dict[str, str] = {"llava-onevision-7b": "llava-onevision", "llava-video-7b": "llava-video"}
ARCHS = ("cpu-bench", *LLAVA_ARCHS, *QWEN_ARCHS)
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def default_frames(arch: str) -> int:
    """Input frames of a request (Qwen2.5-VL pairs them into temporal groups)."""
    if arch == "cpu-bench":
        return CPU_BENCH_FRAMES
    if arch in QWEN_ARCHS:
        return QWEN_FULL_SIZE_FRAMES
    from costmodel.arch import load_arch

    return int(load_arch(arch).default_frames)


def arch_config(arch: str):
    """HF config (dict) or full-size architecture name the adapter of ``arch`` is built from."""
    return CPU_BENCH_CONFIG if arch == "cpu-bench" else arch


def build_adapter(arch: str, *, device: str = "cpu", dtype: str = "fp32", seed: int = 0):
    """Random-weight adapter of ``arch`` (cpu-bench or a full-size name) on ``device``, built from
    the config only (Qwen2.5-VL: costmodel's shipped JSON through ``Qwen2_5_VLAdapter``)."""
    import torch

    from methods.adapters import LlavaOnevisionAdapter, Qwen2_5_VLAdapter

    if arch not in ARCHS:
        raise ValueError(f"unknown --arch {arch!r}; allowed: {list(ARCHS)}")
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; allowed: {list(DTYPES)}")
    dt = getattr(torch, DTYPES[dtype])
    if arch in QWEN_ARCHS:
        return Qwen2_5_VLAdapter.from_config(arch_config(arch), dtype=dt, device=device, seed=seed,
                                             attn_implementation="sdpa")
    setting = LLAVA_ARCHS.get(arch, "llava-onevision")
    return LlavaOnevisionAdapter.from_config(arch_config(arch), setting=setting, dtype=dt,
                                             device=device, seed=seed, attn_implementation="sdpa")


def make_pixels(adapter, frames: int, seed: int = 0):
    """Deterministic random normalised frames (timing does not depend on pixel values)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    s = adapter.image_size
    px = torch.randn(frames, 3, s, s, generator=g)
    return px.to(device=adapter.device, dtype=adapter.dtype), torch.arange(frames, dtype=torch.float32) * 0.5
