"""Building HF ``Qwen2_5_VLForConditionalGeneration`` instances: local checkpoints, random weights
from a config or an architecture name (costmodel's shipped JSON), and the tiny test model.
Never downloads."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Union

import torch

from methods.adapters.base import config_kwargs, shipped_arch_config
from methods.adapters.checkpoint_check import load_checked

EXPECTED_MODEL_TYPE = "qwen2_5_vl"
HF_CLASS = "Qwen2_5_VLForConditionalGeneration"
#: Qwen2.5-VL's processor normalisation (OPENAI_CLIP_MEAN / STD, ``Qwen2VLImageProcessor`` defaults).
QWEN_MEAN_STD = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))


def tiny_config(text_layers: int = 4, vocab_size: int = 1000) -> dict:
    """Tiny random Qwen2.5-VL of the real layout: a 4-block tower (hidden 32, 4 heads) with window
    attention in blocks 0 and 2 and full attention in blocks 1 and 3 (the last block is a
    full-attention one, as in the 7B's [7, 15, 23, 31]), patch 14, temporal patch 2, 2x2 merger,
    56-px windows (2x2 merged tokens per window, so a 112-px frame has 4 windows); a Qwen2.5-VL
    text model of ``text_layers`` layers / hidden 128 / 4 heads / 2 KV heads, M-RoPE sections
    [4, 6, 6] (the 7B's [16, 24, 24] scaled to head_dim 32)."""
    return dict(
        model_type=EXPECTED_MODEL_TYPE,
        vision_config=dict(depth=4, hidden_size=32, intermediate_size=64, num_heads=4, patch_size=14,
                           temporal_patch_size=2, spatial_merge_size=2, window_size=56,
                           fullatt_block_indexes=[1, 3], out_hidden_size=128, in_channels=3,
                           tokens_per_second=2),
        text_config=dict(hidden_size=128, intermediate_size=256, num_hidden_layers=text_layers,
                         num_attention_heads=4, num_key_value_heads=2, vocab_size=vocab_size,
                         max_position_embeddings=8192, bos_token_id=None, eos_token_id=None,
                         rope_parameters={"rope_type": "default", "rope_theta": 1000000.0,
                                          "mrope_section": [4, 6, 6]}),
        image_token_id=vocab_size - 4, video_token_id=vocab_size - 3,
        vision_start_token_id=vocab_size - 2, vision_end_token_id=vocab_size - 1,
        bos_token_id=None, eos_token_id=None)


def arch_config_dict(name: str) -> dict:
    """The HF config dict of a named full-size architecture (costmodel's shipped JSON)."""
    return shipped_arch_config(name, EXPECTED_MODEL_TYPE)


def build_config(cfg: Union[str, dict, object]):
    """An HF ``Qwen2_5_VLConfig`` from a config object, a dict or an architecture name."""
    from transformers import Qwen2_5_VLConfig

    if isinstance(cfg, str):
        cfg = arch_config_dict(cfg)
    if isinstance(cfg, dict):
        cfg = Qwen2_5_VLConfig(**config_kwargs(cfg, EXPECTED_MODEL_TYPE))
    return cfg


def random_model(config: Union[str, dict, object], dtype=torch.float32, device="cpu", seed: int = 0,
                 attn_implementation: str = "sdpa"):
    """Eval model with random weights (seeded); ``device="meta"`` builds shapes only."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    cfg = build_config(config)
    cfg._attn_implementation = attn_implementation
    for sub in (cfg.vision_config, cfg.text_config):
        sub._attn_implementation = attn_implementation
    torch.manual_seed(seed)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration(cfg)
    return model.to(dtype=dtype).eval()


def load_checkpoint(path, dtype=torch.float32, device="cpu", tokenizer=None) -> tuple:
    """(eval model, tokenizer, image_mean, image_std) of a local checkpoint directory, checked whole
    first (``checkpoint_check``); ``tokenizer`` given: used instead of the checkpoint's own files."""
    return load_checked(path, EXPECTED_MODEL_TYPE, HF_CLASS, QWEN_MEAN_STD, dtype=dtype, device=device,
                        tokenizer=tokenizer)


def save_checkpoint(model, path, image_mean, image_std) -> Path:
    """HF layout (config.json + model.safetensors) plus a preprocessor_config.json with mean/std."""
    path = Path(path)
    model.save_pretrained(str(path))
    vc = model.config.vision_config
    (path / "preprocessor_config.json").write_text(json.dumps(
        {"image_mean": list(image_mean), "image_std": list(image_std), "patch_size": vc.patch_size,
         "temporal_patch_size": vc.temporal_patch_size, "merge_size": vc.spatial_merge_size}, indent=1))
    return path
