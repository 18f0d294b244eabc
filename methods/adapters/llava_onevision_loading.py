"""Building HF ``LlavaOnevisionForConditionalGeneration`` instances: local checkpoints, random
weights from a config or an architecture name, and the tiny test model. Never downloads."""
from __future__ import annotations

from pathlib import Path
from typing import Union

import torch

from methods.adapters.base import check_checkpoint_dir, config_kwargs, load_processor_files, shipped_arch_config

EXPECTED_MODEL_TYPE = "llava_onevision"
SIGLIP_MEAN_STD = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # SigLIP processor default

#: Full-size configurations (numbers from docs/sources.md#llava-onevision-7b, #llava-video-7b: SigLIP so400m 26 layers as in the HF
#: port, Qwen2-7B). Used only when costmodel ships no HF config JSON for the name.
FULL_SIZE_CONFIGS = {
    "llava-onevision-7b": dict(
        vision_config=dict(model_type="siglip_vision_model", hidden_size=1152, intermediate_size=4304,
                           num_hidden_layers=26, num_attention_heads=16, patch_size=14, image_size=384,
                           vision_use_head=False),
        text_config=dict(model_type="qwen2", hidden_size=3584, intermediate_size=18944,
                         num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
                         vocab_size=152064, max_position_embeddings=32768, rope_theta=1000000.0),
        image_token_index=151646, video_token_index=151647,
        vision_feature_select_strategy="full", vision_feature_layer=-1),
}
FULL_SIZE_CONFIGS["llava-video-7b"] = FULL_SIZE_CONFIGS["llava-onevision-7b"]


def tiny_config(layers: int = 4, image_size: int = 56, vocab_size: int = 1000) -> dict:
    """Tiny random model of the real architecture (environment.md): SigLIP 2 layers / hidden 64 /
    patch 14; Qwen2 ``layers`` layers / hidden 128 / 4 heads / 2 KV heads."""
    return dict(
        vision_config=dict(model_type="siglip_vision_model", hidden_size=64, intermediate_size=128,
                           num_hidden_layers=2, num_attention_heads=4, patch_size=14,
                           image_size=image_size, vision_use_head=False),
        text_config=dict(model_type="qwen2", hidden_size=128, intermediate_size=256,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         vocab_size=vocab_size, max_position_embeddings=8192),
        image_token_index=vocab_size - 2, video_token_index=vocab_size - 1,
        vision_feature_select_strategy="full", vision_feature_layer=-1)


def load_checkpoint(path, dtype=torch.float32, device="cpu") -> tuple:
    """(eval model, tokenizer or None, image_mean, image_std) of a local checkpoint directory."""
    from transformers import LlavaOnevisionForConditionalGeneration

    path = Path(path)
    check_checkpoint_dir(path, EXPECTED_MODEL_TYPE, "LlavaOnevisionForConditionalGeneration")
    model = LlavaOnevisionForConditionalGeneration.from_pretrained(
        str(path), dtype=dtype, attn_implementation="sdpa", local_files_only=True).to(device).eval()
    tokenizer, mean, std = load_processor_files(path, SIGLIP_MEAN_STD)
    return model, tokenizer, mean, std


def random_model(config_or_arch_name: Union[str, dict, object], dtype=torch.float32, device="cpu",
                 seed: int = 0, attn_implementation: str = "sdpa"):
    """Eval model with random weights (seeded) from an HF config, a dict, or an architecture name."""
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration

    cfg = config_or_arch_name
    if isinstance(cfg, str):
        cfg = arch_config_dict(cfg)
    if isinstance(cfg, dict):
        cfg = LlavaOnevisionConfig(**config_kwargs(cfg, EXPECTED_MODEL_TYPE))
    cfg._attn_implementation = attn_implementation
    torch.manual_seed(seed)
    with torch.device(device):
        model = LlavaOnevisionForConditionalGeneration(cfg)
    return model.to(dtype=dtype).eval()


def arch_config_dict(name: str) -> dict:
    """An HF config dict for a named full-size architecture: costmodel's shipped JSON if present,
    else :data:`FULL_SIZE_CONFIGS`."""
    from costmodel.arch import ARCH_DIR

    if (ARCH_DIR / f"{name}.json").is_file():
        return shipped_arch_config(name, EXPECTED_MODEL_TYPE)
    if name not in FULL_SIZE_CONFIGS:
        raise ValueError(f"unknown architecture {name!r}; allowed: {sorted(FULL_SIZE_CONFIGS)} "
                         f"(or an HF config / dict)")
    return FULL_SIZE_CONFIGS[name]
