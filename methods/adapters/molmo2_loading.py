"""Building and saving HF ``Molmo2ForConditionalGeneration`` instances: a local checkpoint, random
weights from a config or a costmodel architecture name, the tiny test model, the HF on-disk layout."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Union

import torch

from .base import check_checkpoint_dir, config_kwargs, load_processor_files, shipped_arch_config

EXPECTED_MODEL_TYPE = "molmo2"
#: Where an STTS checkpoint keeps its scorer: beside the ViT's weights in the checkpoint's own
#: safetensors, as the released end-to-end fine-tuned Molmo2-4B-Lite-30/50 carry it (docs/sources.md#stts-recipe:
#: the scorer is a module of STTS's ViT, trained with the model). HF's ``Molmo2`` has no such
#: module and skips these tensors; the key names under the prefix are ``TemporalTokenScorer``'s.
STTS_SCORER_PREFIX = "model.vision_tower.stts_scorer."
SCORER_SHARD = "model-stts-scorer.safetensors"
#: Molmo2's video processor normalisation (IMAGENET_STANDARD_MEAN / STD = 0.5; transformers
#: ``models/molmo2/video_processing_molmo2.py``).
MOLMO2_MEAN_STD = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def tiny_molmo2_config(vocab_size: int = 1000, image_size: int = 126, vision_layers: int = 8,
                       text_layers: int = 2) -> dict:
    """A tiny Molmo2 of the real layout: 9x9 patch grid (3x3 pooled), 8 ViT blocks with the
    connector reading blocks [7, 5] (both after STTS's packing at prune_at=3), Qwen3-style LLM."""
    return dict(
        model_type="molmo2",
        vision_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=vision_layers,
                           num_attention_heads=4, num_key_value_heads=4, head_dim=16,
                           image_size=[image_size, image_size], patch_size=14),
        adapter_config=dict(vision_feature_layer=[vision_layers - 1, vision_layers - 3], hidden_size=64,
                            num_attention_heads=4, num_key_value_heads=4, head_dim=16, intermediate_size=128,
                            text_hidden_size=128),
        text_config=dict(hidden_size=128, intermediate_size=256, num_hidden_layers=text_layers,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=32, vocab_size=vocab_size,
                         additional_vocab_size=16, max_position_embeddings=4096),
        image_start_token_id=vocab_size, image_end_token_id=vocab_size + 1, image_patch_id=vocab_size + 2,
        low_res_image_start_token_id=vocab_size + 3, frame_start_token_id=vocab_size + 4,
        frame_end_token_id=vocab_size + 5)


def hf_config(config: Union[str, dict, object]):
    """An HF ``Molmo2Config`` from a config object, a dict, or a costmodel architecture name
    (``molmo2-4b``: the shipped JSON in costmodel/archs)."""
    from transformers import Molmo2Config

    cfg = config
    if isinstance(cfg, str):
        cfg = shipped_arch_config(cfg, EXPECTED_MODEL_TYPE)
    if isinstance(cfg, dict):
        d = config_kwargs(cfg, EXPECTED_MODEL_TYPE)
        for sub in ("vision_config", "adapter_config", "text_config"):
            if isinstance(d.get(sub), dict):
                d[sub] = {k: v for k, v in d[sub].items() if k != "model_type"}
        cfg = Molmo2Config(**d)
    return cfg


def random_model(config, dtype=torch.float32, device="cpu", seed: int = 0, attn_implementation: str = "sdpa"):
    """Random-weight ``Molmo2ForConditionalGeneration`` (eval mode); ``device="meta"``: shapes only."""
    from transformers import Molmo2ForConditionalGeneration

    cfg = hf_config(config)
    cfg._attn_implementation = attn_implementation
    torch.manual_seed(seed)
    with torch.device(device):
        model = Molmo2ForConditionalGeneration(cfg)
    return model.to(dtype=dtype).eval()


def load_checkpoint(path, dtype=torch.float32, device="cpu") -> tuple:
    """(model, tokenizer or None, image_mean, image_std) of a local HF Molmo2 checkpoint (never downloads)."""
    from transformers import Molmo2ForConditionalGeneration

    path = check_checkpoint_dir(path, EXPECTED_MODEL_TYPE, "Molmo2ForConditionalGeneration")
    model = Molmo2ForConditionalGeneration.from_pretrained(
        str(path), dtype=dtype, attn_implementation="sdpa", local_files_only=True).to(device).eval()
    tokenizer, mean, std = load_processor_files(path, MOLMO2_MEAN_STD)
    return model, tokenizer, mean, std


def save_checkpoint(adapter, path, scorer=None, **save_kw) -> Path:
    """HF layout: config.json + model safetensors, preprocessor_config.json with mean/std and the
    pooling window, the tokenizer files when the adapter has a saveable (HF) tokenizer, and an STTS
    ``scorer``'s weights in the checkpoint's safetensors when given (``STTS_SCORER_PREFIX``)."""
    path = Path(path)
    adapter.model.save_pretrained(str(path), **save_kw)
    if scorer is not None:
        _add_scorer(path, scorer)
    if hasattr(adapter.tokenizer, "save_pretrained"):
        adapter.tokenizer.save_pretrained(str(path))
    (path / "preprocessor_config.json").write_text(json.dumps(
        {"image_mean": list(adapter.image_mean), "image_std": list(adapter.image_std),
         "patch_size": adapter.patch_size, "pooling_size": list(adapter.pooling),
         "size": {"height": adapter.image_size, "width": adapter.image_size}}, indent=1))
    return path


def _add_scorer(path: Path, scorer) -> None:
    """The scorer's tensors into the checkpoint: into model.safetensors, or as one more shard listed
    in the index of a sharded checkpoint."""
    from safetensors.torch import load_file, save_file

    tensors = {STTS_SCORER_PREFIX + k: v.detach().cpu().contiguous() for k, v in scorer.state_dict().items()}
    index = path / "model.safetensors.index.json"
    if index.is_file():
        save_file(tensors, str(path / SCORER_SHARD), metadata={"format": "pt"})
        d = json.loads(index.read_text())
        d["weight_map"].update({k: SCORER_SHARD for k in tensors})
        index.write_text(json.dumps(d, indent=2))
        return
    single = path / "model.safetensors"
    save_file({**load_file(str(single)), **tensors}, str(single), metadata={"format": "pt"})


def load_scorer_state(path) -> Optional[dict]:
    """The STTS scorer's state_dict carried by a checkpoint directory, or None when it has none."""
    from safetensors import safe_open

    state = {}
    for f in sorted(Path(path).glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as fh:
            for k in fh.keys():
                if k.startswith(STTS_SCORER_PREFIX):
                    state[k[len(STTS_SCORER_PREFIX):]] = fh.get_tensor(k)
    return state or None
