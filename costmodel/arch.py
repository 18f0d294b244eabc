"""ArchSpec: the dimensions of a video-LLM architecture, read from an HF-style config.

The paper models' configs are shipped as JSON in ``costmodel/archs/`` (never downloaded). Each
file has the shape of the real HF ``config.json`` (``text_config`` / ``vision_config`` as HF names
them) plus a project block ``_video`` (frames, pooled grid, tokens per frame, newline policy, ViT
layers actually run). Keys starting with ``_source`` record where an uncertain fact came from.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ARCH_DIR = Path(__file__).resolve().parent / "archs"
ARCH_NAMES: tuple[str, ...] = (
    "llava-onevision-7b",
    "llava-onevision-72b",
    "llava-video-7b",
    "qwen2.5-vl-7b",
    "molmo2-4b",
)
NEWLINE_POLICIES = ("one_token", "grid", "none")
FAMILIES = ("llava", "qwen2_5_vl", "molmo2")


@dataclass(frozen=True)
class LLMSpec:
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int  # output vocabulary (LM head rows)
    qkv_bias: bool = True
    qk_norm: bool = False
    tied_embeddings: bool = False
    extra_vocab: int = 0  # input-only embedding rows (Molmo2's additional_vocab_size)

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim


@dataclass(frozen=True)
class VisionSpec:
    hidden: int
    intermediate: int
    layers: int  # layers actually run (LLaVA drops SigLIP's last one)
    heads: int
    patch: int
    image_size: tuple[int, int]
    channels: int = 3
    temporal_patch: int = 1
    mlp: str = "gelu2"  # "gelu2" (fc1, fc2) or "swiglu" (gate, up, down)
    norm: str = "layernorm"  # "layernorm" or "rmsnorm"
    patch_embed: str = "conv"  # "conv" or "linear"
    post_norm: bool = True
    window_tokens: int = 0  # 0: every layer attends over a whole frame
    full_attention_layers: tuple[int, ...] = ()

    @property
    def grid(self) -> tuple[int, int]:
        return (self.image_size[0] // self.patch, self.image_size[1] // self.patch)

    @property
    def patches_per_frame(self) -> int:
        h, w = self.grid
        return h * w

    @property
    def patch_in(self) -> int:
        return self.channels * self.temporal_patch * self.patch * self.patch


@dataclass(frozen=True)
class ArchSpec:
    name: str
    family: str
    llm: LLMSpec
    vision: VisionSpec
    projector: tuple[tuple[int, int], ...]  # linear (in, out) shapes applied per projector token
    pooled_grid: tuple[int, int]
    tokens_per_frame: int
    newline: str
    default_frames: int
    pooling: str = "bilinear"
    pooling_attention: tuple[int, int, int] | None = None  # Molmo2: (in_dim, attn_dim, group)
    projector_swiglu: bool = False  # projector[0:2] are gate/up and [2] is down
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.newline not in NEWLINE_POLICIES:
            raise ValueError(f"newline policy {self.newline!r} not in {NEWLINE_POLICIES}")
        if self.family not in FAMILIES:
            raise ValueError(f"family {self.family!r} not in {FAMILIES}")
        h, w = self.pooled_grid
        if h * w != self.tokens_per_frame:
            raise ValueError(f"pooled grid {self.pooled_grid} != tokens_per_frame {self.tokens_per_frame}")

    @property
    def newline_per_frame(self) -> int:
        """Newline tokens per full frame under the ``grid`` policy (one per pooled row)."""
        return self.pooled_grid[0] if self.newline == "grid" else 0

    @classmethod
    def from_hf_config(cls, config: dict[str, Any], name: str) -> "ArchSpec":
        model_type = config.get("model_type")
        text = config["text_config"]
        vis = config["vision_config"]
        video = config.get("_video", {})
        notes = tuple(_collect_sources(config))
        llm = _llm_spec(text, config)
        if model_type in ("llava_onevision", "llava_next_video", "llava"):
            vision = VisionSpec(
                hidden=vis["hidden_size"], intermediate=vis["intermediate_size"],
                layers=video.get("vision_layers_run", vis["num_hidden_layers"]),
                heads=vis["num_attention_heads"], patch=vis["patch_size"],
                image_size=_pair(vis["image_size"]), channels=vis.get("num_channels", 3))
            projector = ((vision.hidden, llm.hidden), (llm.hidden, llm.hidden))
            return cls(name, "llava", llm, vision, projector, _pair(video.get("pooled_grid", (14, 14))),
                       video.get("tokens_per_frame", 196), video.get("newline", "one_token"),
                       video.get("default_frames", 32), video.get("pooling", "bilinear"), notes=notes)
        if model_type == "qwen2_5_vl":
            merge = vis["spatial_merge_size"]
            pixels = _pair(video.get("frame_pixels", (448, 448)))
            window = (vis["window_size"] // vis["patch_size"]) ** 2
            vision = VisionSpec(
                hidden=vis["hidden_size"], intermediate=vis["intermediate_size"],
                layers=vis["depth"], heads=vis["num_heads"], patch=vis["patch_size"],
                image_size=pixels, channels=vis.get("in_channels", 3),
                temporal_patch=vis.get("temporal_patch_size", 2), mlp="swiglu", norm="rmsnorm",
                post_norm=False, window_tokens=window,
                full_attention_layers=tuple(vis.get("fullatt_block_indexes", ())))
            merged_in = vis["hidden_size"] * merge * merge
            projector = ((merged_in, merged_in), (merged_in, vis["out_hidden_size"]))
            return cls(name, "qwen2_5_vl", llm, vision, projector, _pair(video["pooled_grid"]),
                       video["tokens_per_frame"], video.get("newline", "none"),
                       video.get("default_frames", 32), "merger_2x2", notes=notes)
        if model_type == "molmo2":
            ad = config["adapter_config"]
            vision = VisionSpec(
                hidden=vis["hidden_size"], intermediate=vis["intermediate_size"],
                layers=video.get("vision_layers_run", vis["num_hidden_layers"]),
                heads=vis["num_attention_heads"], patch=vis["patch_size"],
                image_size=_pair(vis["image_size"]), channels=vis.get("num_channels", 3),
                patch_embed="linear", post_norm=False)
            pool_in = vis["hidden_size"] * len(ad["vision_feature_layer"])
            attn_dim = ad["num_attention_heads"] * ad["head_dim"]
            gh, gw = _pair(video["pooled_grid"])
            group = (vision.grid[0] // gh) * (vision.grid[1] // gw)
            m = ad["intermediate_size"]
            projector = ((attn_dim, m), (attn_dim, m), (m, ad["text_hidden_size"]))
            return cls(name, "molmo2", llm, vision, projector, (gh, gw), video["tokens_per_frame"],
                       video.get("newline", "none"), video.get("default_frames", 128),
                       "attention_3x3", pooling_attention=(pool_in, attn_dim, group),
                       projector_swiglu=True, notes=notes)
        raise ValueError(f"unsupported model_type {model_type!r} for {name!r}; "
                         "allowed: llava_onevision, qwen2_5_vl, molmo2")


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    a, b = value
    return (int(a), int(b))


def _llm_spec(text: dict[str, Any], config: dict[str, Any]) -> LLMSpec:
    heads = text["num_attention_heads"]
    head_dim = text.get("head_dim") or text["hidden_size"] // heads
    model_type = text.get("model_type", "")
    qwen2 = model_type.startswith("qwen2")
    return LLMSpec(
        hidden=text["hidden_size"], intermediate=text["intermediate_size"],
        layers=text["num_hidden_layers"], heads=heads,
        kv_heads=text.get("num_key_value_heads", heads), head_dim=head_dim,
        vocab=text["vocab_size"], extra_vocab=text.get("additional_vocab_size", 0),
        qkv_bias=bool(text.get("attention_bias", qwen2)),
        qk_norm=text.get("qk_norm_type") is not None or model_type.startswith("qwen3"),
        tied_embeddings=bool(text.get("tie_word_embeddings", config.get("tie_word_embeddings", False))))


def _collect_sources(node: Any, prefix: str = "") -> list[str]:
    out = []
    if isinstance(node, dict):
        for key, value in node.items():
            # HF config dicts carry int keys (id2label): only string keys can name a source
            if isinstance(key, str) and key.startswith("_source"):
                out.append(f"{prefix or 'config'}: {value}")
            else:
                out.extend(_collect_sources(value, f"{prefix}.{key}" if prefix else key))
    return out


def load_config(name: str) -> dict[str, Any]:
    if name not in ARCH_NAMES:
        raise ValueError(f"unknown architecture {name!r}; allowed: {', '.join(ARCH_NAMES)}")
    return json.loads((ARCH_DIR / f"{name}.json").read_text())


def load_arch(name: str) -> ArchSpec:
    return ArchSpec.from_hf_config(load_config(name), name)


def tiny_config(name: str) -> dict[str, Any]:
    """A tiny HF config of the same family as ``name`` (for oracle tests with real tensors).

    The tiny LLaVA config builds with ``LlavaOnevisionConfig(**cfg)``; its ``text_config`` builds a
    ``Qwen2Config`` and its ``vision_config`` a ``SiglipVisionConfig``. Grid 4x4 patches, pooled to 2x2.
    """
    full = load_config(name)
    cfg = json.loads(json.dumps(full))
    text = cfg["text_config"]
    text.update(hidden_size=128, intermediate_size=344, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, vocab_size=1000, max_position_embeddings=4096)
    if "head_dim" in text:
        text["head_dim"] = 32
    vis = cfg["vision_config"]
    if cfg["model_type"] == "qwen2_5_vl":
        vis.update(depth=2, hidden_size=64, intermediate_size=172, num_heads=4, out_hidden_size=128,
                   fullatt_block_indexes=[1], window_size=56)
        cfg["_video"].update(frame_pixels=[112, 112], grid=[8, 8], pooled_grid=[4, 4], tokens_per_frame=16,
                             default_frames=2, vision_layers_run=2, vision_layers_total=2)
    elif cfg["model_type"] == "molmo2":
        vis.update(hidden_size=64, intermediate_size=172, num_hidden_layers=3, num_attention_heads=4,
                   num_key_value_heads=4, head_dim=16, image_size=[84, 84])
        cfg["adapter_config"].update(vision_feature_layer=[2, 1], hidden_size=64, num_attention_heads=4,
                                     num_key_value_heads=4, head_dim=16, intermediate_size=172,
                                     text_hidden_size=128)
        cfg["_video"].update(grid=[6, 6], pooled_grid=[2, 2], tokens_per_frame=4, default_frames=2,
                             vision_layers_run=3, vision_layers_total=3)
    else:
        vis.update(hidden_size=64, intermediate_size=172, num_hidden_layers=2, num_attention_heads=4,
                   image_size=56)
        grid = 4
        pooled = math.ceil(grid / 2) if cfg["_video"]["pooling"] == "bilinear" else grid // 2
        cfg["_video"].update(grid=[grid, grid], pooled_grid=[pooled, pooled], tokens_per_frame=pooled * pooled,
                             default_frames=2, vision_layers_run=2, vision_layers_total=2)
    return cfg


def tiny_arch(name: str) -> ArchSpec:
    return ArchSpec.from_hf_config(tiny_config(name), f"tiny-{name}")
