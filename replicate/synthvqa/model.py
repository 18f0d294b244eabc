"""The tiny LLaVA-OneVision of the cpu tier, and its explicit video -> embeds -> LLM path.

Same token pipeline as LLaVA-OV-7B (HF ``LlavaOnevisionForConditionalGeneration``): SigLIP tower,
last layer (``vision_feature_layer=-1``, ``"full"`` strategy: no CLS to drop), projector
(Linear-GELU-Linear) *before* 2x2 bilinear pooling, frames concatenated, then the newline layout of
the setting (``SETTINGS``, as ``methods.adapters.llava_onevision.SETTINGS``): one ``image_newline``
after the whole video (``llava-onevision``) or one after every pooled row of every frame
(``llava-video``). Only the sizes are tiny: ``TinyArch`` defaults to 112x112 frames, patch 14 ->
8x8 patches -> 4x4 = 16 tokens per frame; the cpu tier trains at 84x84 -> 3x3 = 9 tokens per
frame (``replicate.synthvqa.train.CPU_TIER_DATA``).

``video_features`` / ``build_inputs_embeds`` / ``lm_logits`` spell out what the HF forward does,
so a pruning method can sit between the video features and the LLM (tested equal to ``model(...)``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional

import torch

from methods.adapters.llava_onevision import SETTINGS as ADAPTER_SETTINGS

from .tokenizer import IMAGE, VIDEO, token_id

#: token layouts the cpu tier trains: the adapter's settings -> their newline policy
SETTINGS = {name: setting["newline"] for name, setting in ADAPTER_SETTINGS.items()}

# OpenAI-CLIP normalisation, the one the HF LLaVA-OneVision processors use.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class TinyArch:
    image_size: int = 112
    patch_size: int = 14
    vision_hidden: int = 64
    vision_layers: int = 2
    vision_heads: int = 4
    vision_mlp: int = 256
    text_hidden: int = 128
    text_layers: int = 3
    text_heads: int = 4
    text_kv_heads: int = 2
    text_mlp: int = 512
    max_positions: int = 2048
    # HF's default 0.02 leaves attention near-uniform for hundreds of steps on this tiny model
    # (q.k ~ init^2): a larger init shortens the plateau before heads lock onto the events.
    # Measured (seed 0, 56 px, 2500 steps, hold 300, answer loss only, before the auxiliary probes):
    # 0.05 -> 57.3 % test accuracy, 0.02 -> 39.2 %.
    init_std: float = 0.05

    def to_dict(self) -> dict:
        return asdict(self)


def tiny_llava_config(tokenizer, arch: Optional[TinyArch] = None):
    """HF ``LlavaOnevisionConfig`` for the tiny model; vocab and special ids from ``tokenizer``."""
    from transformers import LlavaOnevisionConfig

    a = arch or TinyArch()
    if a.image_size % a.patch_size:
        raise ValueError(f"image_size {a.image_size} must be a multiple of patch_size {a.patch_size}")
    vocab = len(tokenizer)
    vision = dict(
        model_type="siglip_vision_model", hidden_size=a.vision_hidden, intermediate_size=a.vision_mlp,
        num_hidden_layers=a.vision_layers, num_attention_heads=a.vision_heads, image_size=a.image_size,
        patch_size=a.patch_size, vision_use_head=False,
    )
    text = dict(
        model_type="qwen2", vocab_size=vocab, hidden_size=a.text_hidden, intermediate_size=a.text_mlp,
        num_hidden_layers=a.text_layers, num_attention_heads=a.text_heads,
        num_key_value_heads=a.text_kv_heads, max_position_embeddings=a.max_positions,
        rope_theta=10000.0, tie_word_embeddings=False, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, bos_token_id=None, initializer_range=a.init_std,
    )
    cfg = LlavaOnevisionConfig(
        vision_config=vision, text_config=text,
        image_token_index=token_id(tokenizer, IMAGE), video_token_index=token_id(tokenizer, VIDEO),
        vision_feature_select_strategy="full", vision_feature_layer=-1, tie_word_embeddings=False,
        initializer_range=a.init_std,
    )
    return cfg


def build_model(tokenizer, arch: Optional[TinyArch] = None, seed: int = 0):
    from transformers import LlavaOnevisionForConditionalGeneration

    torch.manual_seed(seed)
    model = LlavaOnevisionForConditionalGeneration(tiny_llava_config(tokenizer, arch))
    return model.eval()


def pooled_side(config) -> int:
    """Side of the pooled token grid per frame: ceil(g/2) for a g x g patch grid (HF ``apply_pooling``)."""
    return math.ceil(config.vision_config.image_size // config.vision_config.patch_size / 2)


def tokens_per_frame(config) -> int:
    """Pooled tokens per frame: ceil(g/2)^2 for a g x g patch grid."""
    return pooled_side(config) ** 2


def check_setting(setting: str) -> str:
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; allowed: {sorted(SETTINGS)}")
    return setting


@dataclass(frozen=True)
class Layout:
    """How the video sits in the prompt: the setting's newline layout, and whether LLaVA-Video's time
    instruction follows the video (``methods.adapters.llava_onevision``'s ``time_prompt``)."""
    setting: str = "llava-onevision"
    time_prompt: bool = False

    def __post_init__(self) -> None:
        check_setting(self.setting)
        if self.time_prompt and self.setting != "llava-video":
            raise ValueError(f"time_prompt is LLaVA-Video's time instruction; setting {self.setting!r} has none")

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> "Layout":
        """From a checkpoint's ``synthvqa.json`` ``layout`` entry (absent: LLaVA-OV, the first layout)."""
        d = d or {}
        unknown = sorted(set(d) - {"setting", "time_prompt"})
        if unknown:
            raise ValueError(f"unknown layout key(s) {unknown}; allowed: ['setting', 'time_prompt']")
        return cls(**d)


def num_video_tokens(config, frames: int, setting: str = "llava-onevision") -> int:
    """Placeholders one video needs: frames x pooled tokens plus the setting's newlines (one per
    video, or one per pooled row of every frame)."""
    g = pooled_side(config)
    if SETTINGS[check_setting(setting)] == "grid":
        return frames * g * (g + 1)
    return frames * g * g + 1


def preprocess_video(video: torch.Tensor, image_size: int) -> torch.Tensor:
    """uint8 (F,H,W,3) or (B,F,H,W,3) -> float (.., F, 3, S, S): resize, /255, CLIP-normalise."""
    if video.dtype != torch.uint8 or video.shape[-1] != 3 or video.dim() not in (4, 5):
        raise ValueError(f"video must be uint8 (F,H,W,3) or (B,F,H,W,3), got {video.dtype} {tuple(video.shape)}")
    x = video.float().div_(255.0).movedim(-1, -3)  # (.., F, 3, H, W)
    if x.shape[-1] != image_size or x.shape[-2] != image_size:
        lead = x.shape[:-3]
        x = torch.nn.functional.interpolate(x.reshape(-1, *x.shape[-3:]), size=(image_size, image_size),
                                            mode="bicubic", align_corners=False).clamp_(0, 1)
        x = x.reshape(*lead, 3, image_size, image_size)
    mean = torch.tensor(CLIP_MEAN).view(3, 1, 1)
    std = torch.tensor(CLIP_STD).view(3, 1, 1)
    return (x - mean) / std


def preprocessor_dict(image_size: int) -> dict:
    """Content of ``preprocessor_config.json`` (what our own video preprocessing does)."""
    return {
        "image_size": image_size, "size": {"height": image_size, "width": image_size},
        "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
        "image_mean": list(CLIP_MEAN), "image_std": list(CLIP_STD), "resample": "bicubic",
        "processor_note": "frames are decoded and normalised by replicate.synthvqa.model.preprocess_video",
    }


# ------------------------------------------------------------------- explicit forward pieces
def pooled_video(model, pixel_values_videos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, F, 3, S, S) -> ((B, F * tokens_per_frame, D) projected and pooled features, (B, D) newline)."""
    B, F_ = pixel_values_videos.shape[:2]
    out = model.model.get_video_features(
        pixel_values_videos, vision_feature_layer=model.config.vision_feature_layer,
        vision_feature_select_strategy=model.config.vision_feature_select_strategy, return_dict=True)
    # transformers >= 5.18 appends the image_newline to the pooled video inside get_video_features,
    # 5.17 leaves it to the model's forward: take the frames' tokens and the parameter itself
    visual = out.pooler_output[:, :F_ * tokens_per_frame(model.config)]
    return visual, model.model.image_newline[None].expand(B, -1).to(visual.dtype)


def lay_out(visual: torch.Tensor, newline: torch.Tensor, config, setting: str = "llava-onevision") -> torch.Tensor:
    """Video placeholders' features in the setting's order: (B, F*N, D) tokens + (B, D) newline ->
    (B, num_video_tokens, D)."""
    if SETTINGS[check_setting(setting)] == "one_token":
        return torch.cat([visual, newline[:, None]], 1)
    patches = config.vision_config.image_size // config.vision_config.patch_size
    if patches % 2:
        # HF pools by bilinear interpolation to ceil(g/2); LLaVA-Video's 2x2 average pooling gives
        # floor(g/2). They agree exactly on an even patch grid only (sampling points fall midway).
        raise ValueError(f"the llava-video layout needs an even patch grid here, got {patches}x{patches} patches")
    B, FN, D = visual.shape
    g = pooled_side(config)
    grid = visual.reshape(B, FN // (g * g), g, g, D)
    rows_end = newline[:, None, None, None].expand(B, grid.shape[1], g, 1, D)
    return torch.cat([grid, rows_end], 3).reshape(B, -1, D)


def video_features(model, pixel_values_videos: torch.Tensor, setting: str = "llava-onevision") -> torch.Tensor:
    """(B, F, 3, S, S) -> (B, num_video_tokens, D): projected, pooled, newlines laid out per setting."""
    return lay_out(*pooled_video(model, pixel_values_videos), model.config, setting)


def build_inputs_embeds(model, input_ids: torch.Tensor, video_feats: torch.Tensor) -> torch.Tensor:
    """Text embeddings with the video placeholders replaced by ``video_feats`` (in order), as the
    HF forward's ``masked_scatter`` does. ``video_feats``: (B, Nv, D), Nv = placeholders per row."""
    embeds = model.get_input_embeddings()(input_ids)
    mask = input_ids == model.config.video_token_id
    counts = mask.sum(1)
    if video_feats.shape[0] != input_ids.shape[0] or bool((counts != video_feats.shape[1]).any()):
        raise ValueError(f"video placeholders per row {counts.tolist()} != video features "
                         f"{tuple(video_feats.shape[:2])}")
    embeds = embeds.clone()
    embeds[mask] = video_feats.reshape(-1, video_feats.shape[-1]).to(embeds.dtype)
    return embeds


def lm_hidden(model, inputs_embeds: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
              position_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Last hidden states of the language model (no LM head)."""
    if position_ids is not None and attention_mask is None:
        # Given position ids with gaps and no mask, transformers reads each gap as the start of a
        # new packed sequence and blocks attention across it; pruned inputs keep such gaps.
        attention_mask = torch.ones(position_ids.shape, dtype=torch.long, device=inputs_embeds.device)
    out = model.model.language_model(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                                     position_ids=position_ids, use_cache=False)
    return out.last_hidden_state


def lm_logits(model, inputs_embeds: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
              position_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
    return model.lm_head(lm_hidden(model, inputs_embeds, attention_mask, position_ids))
