"""Adapter for HF ``Molmo2ForConditionalGeneration`` (transformers ``models.molmo2``): STTS's own backbone.

Where things are in the HF implementation (transformers 5.x):

- ViT ``model.model.vision_tower`` (``Molmo2VisionModel``): ``patch_embedding`` is a Linear over
  flattened 14x14x3 patches (channels last, ``batch_pixels_to_patches``) plus a learned
  ``positional_embedding``; ``layers`` are ``Molmo2VisionEncoderLayer(hidden, attention_mask)``;
  no post-layernorm. Frames are the batch dimension (F, 27*27 = 729, 1152).
- Connector ``model.model.multi_modal_projector`` (``Molmo2Adapter``): the outputs of ViT blocks
  ``adapter_config.vision_feature_layer`` (e.g. [24, 18]; ``hidden_states[l + 1]``) concatenated on
  the channel axis, then 3x3 attention pooling (query = mean of the window's valid patches, windows
  from ``arange_for_pooling``: 9 x 9 = 81 per frame), then the SwiGLU ``image_projector``. A pooled
  token is emitted only if its window has a valid patch (``valid_token_mask``).
- Prompt (``Molmo2Processor.get_video_string``): per frame ``"{t:.1f} "`` text, ``<frame_start>``,
  one ``<im_patch>`` per pooled token, ``<frame_end>``; frames joined by a space. The pooled
  features are *added* to the ``<im_patch>`` embeddings; every image special token has
  ``mm_token_type_ids == 1`` and these attend to each other bidirectionally.

STTS on it, as the paper and its code place it (papers.md §1.3): the scorer runs on the hidden
states after ViT block ``prune_at`` (3), block ``prune_at+1`` gets the soft key bias, the kept
tokens are packed first-fit-decreasing after it and the later blocks run on the bins; every
feature layer the connector reads is scattered back to the (F, 729) layout; the STTS groups *are*
the connector's 3x3 pooling windows, so a pruned group's pooled token is not emitted and the prompt
carries one ``<im_patch>`` per kept pooled token of each frame. Only video frames are pruned (this
adapter takes videos only). The non-learned rules (``random``/``heuristic``/``easy``) select from
the ViT input embeddings and pack right after block ``prune_at`` with no bias, as the code does.

The LLM runs through the HF ``Molmo2ForConditionalGeneration`` forward (``inputs_embeds`` +
``mm_token_type_ids``): methods here act before the LLM (pre-LLM reductions, in-ViT pruning).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import torch

from costmodel.schedule import TokenSchedule, VisionLoad, uniform_vision
from methods.stts import (attention_bias, group_index, groups_to_patch_mask, rearrange_tokens,
                          select_by_rule, select_groups, unpack)
from methods.types import Reduction, VideoTokens

from .base import HFModelDims, check_checkpoint_dir, load_processor_files
from .text import ByteTokenizer, encode_text

__all__ = ["Molmo2VideoAdapter", "Molmo2Inputs", "Molmo2Generation", "Molmo2TowerRun", "MOLMO2_METHODS",
           "Molmo2PrunedTokens"]

EXPECTED_MODEL_TYPE = "molmo2"
#: Methods that make sense on Molmo2 (pre-LLM reductions and STTS's in-ViT rules).
MOLMO2_METHODS = ("vanilla", "random", "uniform-pool", "stts", "stts-random", "stts-heuristic", "stts-easy")
#: Molmo2's video processor normalisation (IMAGENET_STANDARD_MEAN / STD = 0.5).
MOLMO2_MEAN_STD = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
_SPECIAL = ("image_start_token_id", "image_end_token_id", "image_patch_id", "low_res_image_start_token_id",
            "frame_start_token_id", "frame_end_token_id")


@dataclass
class Molmo2TowerRun:
    """One video through the (possibly pruned) ViT up to the deepest feature layer.

    features      {block index: (F, N, D)} outputs of the connector's layers in the original
                  layout (scattered back; zeros at patches the later blocks did not process)
    patch_keep    (F, N) bool selection (pre-refill: what the LLM side uses)
    group_keep    (F, G) bool, G = pooling windows per frame
    scores / bias / prune_hidden: scorer output (F, G), key bias (F, N), block-prune_at states
    vision_load   the ViT load of every block run
    """

    features: dict
    patch_keep: torch.Tensor
    group_keep: torch.Tensor
    scores: Optional[torch.Tensor] = None
    bias: Optional[torch.Tensor] = None
    prune_hidden: Optional[torch.Tensor] = None
    vision_load: tuple = ()
    packed: object = None


@dataclass
class Molmo2PrunedTokens(VideoTokens):
    """VideoTokens of the Molmo2 connector: ``features`` (F, G, D) pooled (zeros where not emitted),
    ``keep`` (F, G) which pooled tokens reach the LLM."""

    keep: Optional[torch.Tensor] = None
    vision_load: Optional[tuple] = None
    info: dict = field(default_factory=dict)


@dataclass
class Molmo2Inputs:
    """One prompt for the Molmo2 LLM (batch 1)."""

    input_ids: torch.Tensor          # (1, L)
    inputs_embeds: torch.Tensor      # (1, L, D) with the pooled features added at <im_patch>
    mm_token_type_ids: torch.Tensor  # (1, L) 1 for image special tokens
    frames: int
    visual_tokens: int
    info: dict = field(default_factory=dict)

    @property
    def length(self) -> int:
        return int(self.input_ids.shape[1])


@dataclass
class Molmo2Generation:
    tokens: list
    prefill_logits: torch.Tensor
    schedule: TokenSchedule
    text: str = ""


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


def _strip_private(d):
    if isinstance(d, dict):
        return {k: _strip_private(v) for k, v in d.items() if not str(k).startswith("_")}
    return d


class Molmo2VideoAdapter(HFModelDims):
    """Runs one HF Molmo2 instance on videos, with pre-LLM reductions and STTS's in-ViT pruning."""

    def __init__(self, model, tokenizer=None, image_mean: Sequence[float] = MOLMO2_MEAN_STD[0],
                 image_std: Sequence[float] = MOLMO2_MEAN_STD[1], pooling: tuple[int, int] = (3, 3)):
        if getattr(model.config, "model_type", None) != EXPECTED_MODEL_TYPE:
            raise ValueError(f"Molmo2VideoAdapter needs model_type {EXPECTED_MODEL_TYPE!r}, got "
                             f"{getattr(model.config, 'model_type', None)!r}")
        self.model = model
        vocab = int(model.config.text_config.vocab_size)
        self.tokenizer = tokenizer if tokenizer is not None else ByteTokenizer(vocab)
        self.image_mean = tuple(float(x) for x in image_mean)
        self.image_std = tuple(float(x) for x in image_std)
        if pooling[0] != pooling[1]:
            raise ValueError(f"STTS groups need a square pooling window, got {pooling}")
        self.pooling = (int(pooling[0]), int(pooling[1]))
        self.method = None
        self.last_schedule: Optional[TokenSchedule] = None
        self._check_grid()

    # ---- construction --------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path, dtype=torch.float32, device="cpu", **kwargs) -> "Molmo2VideoAdapter":
        """Load a local HF Molmo2 checkpoint directory (never downloads)."""
        from transformers import Molmo2ForConditionalGeneration

        path = check_checkpoint_dir(path, EXPECTED_MODEL_TYPE, "Molmo2ForConditionalGeneration")
        model = Molmo2ForConditionalGeneration.from_pretrained(
            str(path), dtype=dtype, attn_implementation="sdpa", local_files_only=True).to(device).eval()
        tokenizer, mean, std = load_processor_files(path, MOLMO2_MEAN_STD)
        return cls(model, tokenizer=tokenizer, image_mean=mean, image_std=std, **kwargs)

    @classmethod
    def from_config(cls, config: Union[str, dict, object], dtype=torch.float32, device="cpu", seed: int = 0,
                    attn_implementation: str = "sdpa") -> "Molmo2VideoAdapter":
        """Random weights from an HF config (object or dict) or a costmodel architecture name
        (``molmo2-4b``: the shipped JSON). ``device="meta"`` builds shapes only (no memory)."""
        from transformers import Molmo2Config, Molmo2ForConditionalGeneration

        cfg = config
        if isinstance(cfg, str):
            import costmodel

            f = Path(costmodel.__file__).parent / "archs" / f"{cfg}.json"
            if not f.is_file():
                raise ValueError(f"unknown architecture {cfg!r}: no {f.name} in costmodel/archs")
            cfg = json.loads(f.read_text())
        if isinstance(cfg, dict):
            d = _strip_private(cfg)
            if d.get("model_type", EXPECTED_MODEL_TYPE) != EXPECTED_MODEL_TYPE:
                raise ValueError(f"config has model_type {d.get('model_type')!r}; expected {EXPECTED_MODEL_TYPE!r}")
            d.pop("model_type", None)
            for sub in ("vision_config", "adapter_config", "text_config"):
                if isinstance(d.get(sub), dict):
                    d[sub] = {k: v for k, v in d[sub].items() if k != "model_type"}
            cfg = Molmo2Config(**d)
        cfg._attn_implementation = attn_implementation
        torch.manual_seed(seed)
        with torch.device(device):
            model = Molmo2ForConditionalGeneration(cfg)
        return cls(model.to(dtype=dtype).eval())

    @classmethod
    def tiny(cls, seed: int = 0, vocab_size: int = 1000, image_size: int = 126, vision_layers: int = 8,
             text_layers: int = 2) -> "Molmo2VideoAdapter":
        """Tiny random-weight Molmo2 of the real architecture (see ``tiny_molmo2_config``)."""
        return cls.from_config(tiny_molmo2_config(vocab_size, image_size, vision_layers, text_layers), seed=seed)

    def save_pretrained(self, path) -> Path:
        """HF layout (config.json + model.safetensors) plus preprocessor_config.json with mean/std."""
        path = Path(path)
        self.model.save_pretrained(str(path))
        (path / "preprocessor_config.json").write_text(json.dumps(
            {"image_mean": list(self.image_mean), "image_std": list(self.image_std),
             "patch_size": self.patch_size, "pooling_size": list(self.pooling),
             "size": {"height": self.image_size, "width": self.image_size}}, indent=1))
        return path

    # ---- dimensions ------------------------------------------------------------------------
    @property
    def tower(self):
        return self.model.model.vision_tower

    @property
    def connector(self):
        return self.model.model.multi_modal_projector

    @property
    def device(self):
        return self.model.lm_head.weight.device

    @property
    def dtype(self):
        return self.model.lm_head.weight.dtype

    @property
    def patch_size(self) -> int:
        return int(self.vision_config.patch_size)

    @property
    def image_size(self) -> int:
        return int(self.vision_config.image_size[0])

    @property
    def tower_grid(self) -> tuple[int, int]:
        s = self.vision_config.image_size
        return (int(s[0]) // self.patch_size, int(s[1]) // self.patch_size)

    @property
    def grid(self) -> tuple[int, int]:
        h, w = self.tower_grid
        return (-(-h // self.pooling[0]), -(-w // self.pooling[1]))

    @property
    def tokens_per_frame(self) -> int:
        h, w = self.grid
        return h * w

    @property
    def tower_tokens(self) -> int:
        h, w = self.tower_grid
        return h * w

    @property
    def feature_blocks(self) -> list[int]:
        """The connector's ViT blocks as non-negative block indices (``hidden_states[l + 1]``)."""
        n = len(self.tower.layers)
        return [l if l >= 0 else n + l for l in self.config.adapter_config.vision_feature_layer]

    @property
    def newline_policy(self) -> str:
        return "none"

    def _check_grid(self) -> None:
        """STTS groups are the connector's windows: equal only when the grid divides by the window."""
        from transformers.models.molmo2.video_processing_molmo2 import arange_for_pooling

        h, w = self.tower_grid
        ph, pw = self.pooling
        if h % ph or w % pw:
            raise ValueError(f"tower grid {self.tower_grid} is not a multiple of the pooling window "
                             f"{self.pooling}; STTS groups would not match the connector's windows")
        hf, _, _ = arange_for_pooling(torch.arange(h * w).reshape(h, w), ph, pw)
        if not torch.equal(hf.long(), group_index((h, w), ph)):
            raise AssertionError("STTS group_index differs from the connector's arange_for_pooling")

    def arch_spec(self, name: Optional[str] = None, default_frames: int = 64):
        """costmodel ArchSpec of this instance."""
        from costmodel.arch import ArchSpec

        full = self.config.to_dict()
        d = {k: full[k] for k in ("model_type", "text_config", "vision_config", "adapter_config")}
        d["tie_word_embeddings"] = False
        h, w = self.tower_grid
        d["_video"] = {"default_frames": default_frames, "grid": [h, w], "pooled_grid": list(self.grid),
                       "pooling": "attention_3x3", "tokens_per_frame": self.tokens_per_frame, "newline": "none",
                       "vision_layers_run": max(self.feature_blocks) + 1}
        return ArchSpec.from_hf_config(d, name or "adapter-molmo2")

    # ---- video -----------------------------------------------------------------------------
    def load_video(self, path, frames: int):
        """Decode and preprocess a local video (methods.video_io): (F, 3, S, S) normalised."""
        from methods.video_io import load_video

        return load_video(path, frames, self.image_size, self.image_mean, self.image_std)

    def patchify(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(F, 3, S, S) -> (F, N, p*p*3) as HF ``batch_pixels_to_patches`` (channels last)."""
        from transformers.models.molmo2.video_processing_molmo2 import batch_pixels_to_patches

        if pixel_values.dim() == 5:
            if pixel_values.shape[0] != 1:
                raise ValueError(f"batch size 1 only: got a batch of {pixel_values.shape[0]} videos")
            pixel_values = pixel_values[0]
        if pixel_values.dim() != 4 or pixel_values.shape[1] != 3 or pixel_values.shape[-1] != self.image_size:
            raise ValueError(f"pixel_values must be (F, 3, {self.image_size}, {self.image_size}), got "
                             f"{tuple(pixel_values.shape)}")
        return batch_pixels_to_patches(pixel_values.permute(0, 2, 3, 1), self.patch_size)

    def pooling_index(self, frames: int) -> torch.Tensor:
        """(F * G, 9) flat patch index of every pooled token (HF ``video_token_pooling``)."""
        per = group_index(self.tower_grid, self.pooling[0])
        n = self.tower_tokens
        off = (torch.arange(frames) * n)[:, None, None]
        return torch.where(per[None] >= 0, per[None] + off, per[None]).reshape(-1, per.shape[-1])

    # ---- ViT with STTS ------------------------------------------------------------------------
    def _embed(self, patches: torch.Tensor) -> torch.Tensor:
        t = self.tower
        h = t.patch_embedding(patches.to(device=self.device, dtype=t.patch_embedding.weight.dtype))
        return h + t.positional_embedding[None].to(h)

    def run_tower(self, pixel_values: torch.Tensor, *, prune_at: Optional[int] = None, topk: float = 0.0,
                  scorer=None, rule: str = "scorer", rescale_min: float = math.exp(-2.0),
                  keep_groups: Optional[torch.Tensor] = None, apply_bias: bool = True, seed: int = 0,
                  keep_prune_hidden: bool = False) -> Molmo2TowerRun:
        """The ViT over one video's frames up to the deepest connector layer (see module doc).

        ``prune_at=None`` (or ``topk=0`` with no ``keep_groups``): the plain per-frame forward.
        ``rule='scorer'``: scorer after block prune_at, bias in prune_at+1, packing after it;
        other rules (``random``/``heuristic``/``easy``) select on the input embeddings and pack
        after block prune_at. ``keep_groups`` (F, G) overrides the selection (tests, measurement)."""
        h = self._embed(self.patchify(pixel_values))
        F_, N, _ = h.shape
        grid, g = self.tower_grid, self.pooling[0]
        layers = max(self.feature_blocks) + 1
        plain = prune_at is None or (float(topk) == 0.0 and keep_groups is None)
        if not plain:
            last = layers - 2 if rule == "scorer" else layers - 1
            if isinstance(prune_at, bool) or not isinstance(prune_at, int) or not 0 <= prune_at <= last:
                raise ValueError(f"prune_at must be an int in [0, {last}] for a ViT running {layers} blocks "
                                 f"with rule {rule!r}, got {prune_at!r}")
            if rule == "scorer" and scorer is None and keep_groups is None:
                raise ValueError("rule 'scorer' needs a scorer or an explicit keep_groups mask")
        if not plain and rule != "scorer" and keep_groups is None:
            keep_groups = select_by_rule(h, grid, topk, rule, group=g, seed=seed)
        pack_at = None if plain else (prune_at + 1 if rule == "scorer" else prune_at)
        feats, loads = {}, []
        scores = bias = prune_hidden = packed = packed_h = mask = None
        patch_keep = torch.ones(F_, N, dtype=torch.bool, device=h.device)
        for l in range(layers):
            layer = self.tower.layers[l]
            if packed_h is not None:
                packed_h = layer(packed_h, mask)
                loads.append(VisionLoad(packed.num_bins, packed.hidden.shape[1]))
                if l in self.feature_blocks:
                    feats[l] = unpack(packed_h, packed)
                continue
            attn = bias.to(h.dtype)[:, None, None, :] if (bias is not None and l == prune_at + 1) else None
            h = layer(h, attn)
            loads.append(VisionLoad(F_, N))
            if l in self.feature_blocks:
                feats[l] = h
            if plain:
                continue
            if l == prune_at:
                if keep_prune_hidden:
                    prune_hidden = h
                if rule == "scorer" and scorer is not None:
                    scores = scorer(h, grid)
                    if apply_bias:
                        bias = attention_bias(scores, grid, rescale_min, g)
                if keep_groups is None:
                    keep_groups = select_groups(scores, topk)
                patch_keep = groups_to_patch_mask(keep_groups.to(h.device), grid, g)
            if l == pack_at and not bool(patch_keep.all()):
                packed = rearrange_tokens(h, patch_keep)
                packed_h = packed.hidden
                mask = torch.zeros(packed.attn_mask.shape, dtype=h.dtype, device=h.device)
                mask = mask.masked_fill_(~packed.attn_mask, torch.finfo(h.dtype).min)[:, None]
        if keep_groups is None:
            keep_groups = torch.ones(F_, self.tokens_per_frame, dtype=torch.bool, device=h.device)
        return Molmo2TowerRun(feats, patch_keep, keep_groups.to(h.device), scores, bias, prune_hidden,
                              tuple(loads), packed)

    def connect(self, run: Molmo2TowerRun) -> torch.Tensor:
        """The HF connector on the (scattered-back) multi-layer features: (F, G, D_text) pooled
        tokens, zeros where the group was pruned (its window is all -1, so it is not emitted)."""
        cat = torch.cat([run.features[l] for l in self.feature_blocks], dim=-1)   # (F, N, n*D)
        F_ = cat.shape[0]
        idx = self.pooling_index(F_).to(cat.device)
        keep = run.group_keep.reshape(-1)
        idx = torch.where(keep[:, None], idx, torch.full_like(idx, -1))
        emitted = self.connector(cat, idx).last_hidden_state                      # (kept, D_text)
        out = emitted.new_zeros(F_ * self.tokens_per_frame, emitted.shape[-1])
        out[keep] = emitted
        return out.view(F_, self.tokens_per_frame, -1)

    def encode_video(self, pixel_values: torch.Tensor, timestamps=None, **_ignored) -> VideoTokens:
        """(F, 3, S, S) frames -> pooled tokens (STTS's in-ViT pruning when such a method is attached)."""
        m = self.method
        if m is not None and "in_vit" in getattr(m, "stages", ()):
            return m.encode_in_vit(self, pixel_values, timestamps)
        with torch.no_grad():
            run = self.run_tower(pixel_values)
            feats = self.connect(run)
        ts = None if timestamps is None else torch.as_tensor(timestamps, dtype=torch.float32)
        return VideoTokens(features=feats, grid=self.grid, timestamps=ts, newline_policy="none")

    def encode_video_pruned(self, pixel_values, *, prune_at: int, topk: float, scorer=None, rule: str = "scorer",
                            rescale_min: float = math.exp(-2.0), seed: int = 0, timestamps=None,
                            keep_groups=None) -> Molmo2PrunedTokens:
        """STTS's in-ViT stage on Molmo2 (called by the stts method's ``encode_in_vit``)."""
        with torch.no_grad():
            run = self.run_tower(pixel_values, prune_at=prune_at, topk=topk, scorer=scorer, rule=rule,
                                 rescale_min=rescale_min, seed=seed, keep_groups=keep_groups)
            feats = self.connect(run)
        keep = run.group_keep
        ts = None if timestamps is None else torch.as_tensor(timestamps, dtype=torch.float32)
        info = {"kept_pooled": int(keep.sum()), "pooled": int(keep.numel()), "kept_per_frame": keep.sum(1).tolist(),
                "bins": run.packed.num_bins if run.packed is not None else keep.shape[0],
                "refilled_patches": int(run.packed.refill_mask.sum()) if run.packed is not None else 0}
        return Molmo2PrunedTokens(features=feats, grid=self.grid, timestamps=ts, newline_policy="none",
                                  keep=keep, vision_load=run.vision_load, info=info)

    # ---- prompt ------------------------------------------------------------------------------
    def _text_ids(self, text: str) -> list[int]:
        return encode_text(self.tokenizer, text)

    def video_ids(self, kept_per_frame: Sequence[int], times: Sequence[float]) -> tuple[list[int], list[int]]:
        """Molmo2's video string as ids (``get_video_string``) with ``kept_per_frame[f]`` patch
        placeholders in frame f; returns (ids, mm_token_type_ids)."""
        c = self.config
        ids: list[int] = []
        types: list[int] = []
        for f, (k, t) in enumerate(zip(kept_per_frame, times)):
            txt = self._text_ids((" " if f > 0 else "") + f"{float(t):.1f} ")
            frame = [c.frame_start_token_id] + [c.image_patch_id] * int(k) + [c.frame_end_token_id]
            ids += txt + frame
            types += [0] * len(txt) + [1] * len(frame)
        return ids, types

    def build_inputs(self, question: str, tokens: VideoTokens, reduction: Optional[Reduction] = None,
                     duration: Optional[float] = None) -> Molmo2Inputs:
        """``<|im_start|>user\\n{video}{question}<|im_end|>\\n<|im_start|>assistant\\n``; the video's
        pooled tokens (all, the kept ones of an in-ViT method, or a reduction's) in frame order."""
        F_, G, D = tokens.features.shape
        if reduction is not None:
            src, feats = reduction.source.cpu(), reduction.features
            order = torch.argsort(src, stable=True)          # placeholders sit inside their frame
            src, feats = src[order], feats[order.to(feats.device)]
        else:
            keep = getattr(tokens, "keep", None)
            if keep is None:
                keep = torch.ones(F_, G, dtype=torch.bool)
            src = torch.nonzero(keep.reshape(-1).cpu()).squeeze(1)
            feats = tokens.features.reshape(-1, D)[src.to(tokens.features.device)]
        per_frame = torch.bincount(src // G, minlength=F_).tolist()
        bos = getattr(self.tokenizer, "bos_token_id", None) or getattr(self.tokenizer, "eos_token_id", None)
        pre = ([bos] if not isinstance(self.tokenizer, ByteTokenizer) and bos is not None else [])
        pre += self._text_ids("<|im_start|>user\n")
        vid, vtypes = self.video_ids(per_frame, tokens.times().tolist())
        post = self._text_ids(f"{question}<|im_end|>\n<|im_start|>assistant\n")
        ids = torch.tensor(pre + vid + post, device=self.device)[None]
        types = torch.tensor([0] * len(pre) + vtypes + [0] * len(post), device=self.device)[None]
        embeds = self.model.get_input_embeddings()(ids)
        slot = ids[0] == self.config.image_patch_id
        if int(slot.sum()) != feats.shape[0]:
            raise AssertionError(f"{int(slot.sum())} placeholders for {feats.shape[0]} pooled tokens")
        embeds = embeds.clone()
        embeds[0, slot] = embeds[0, slot] + feats.to(device=self.device, dtype=embeds.dtype)
        info = {"visual": int(slot.sum()), "kept_per_frame": per_frame}
        if getattr(tokens, "vision_load", None) is not None:
            info["vision_load"] = tuple(tokens.vision_load)
        return Molmo2Inputs(ids, embeds, types, frames=F_, visual_tokens=int(slot.sum()), info=info)

    # ---- LLM ---------------------------------------------------------------------------------
    def forward(self, inputs: Molmo2Inputs, use_cache: bool = False, logits_to_keep: int = 1):
        """HF forward on the prompt embeddings (bidirectional block over image tokens)."""
        return self.model(inputs_embeds=inputs.inputs_embeds, mm_token_type_ids=inputs.mm_token_type_ids,
                          use_cache=use_cache, logits_to_keep=logits_to_keep)

    @torch.no_grad()
    def prefill(self, inputs: Molmo2Inputs, plan=None, use_cache: bool = True, all_logits: bool = False):
        """(logits, HF output): last-token (vocab,) logits, or (L, vocab) with ``all_logits``.
        Inner-LLM plans are not supported on Molmo2 (methods here act before the LLM)."""
        if plan is not None or (self.method is not None and self.method.inner_plan(self.num_layers) is not None):
            raise ValueError("inner-LLM plans are not supported by the Molmo2 adapter")
        out = self.forward(inputs, use_cache=use_cache, logits_to_keep=0 if all_logits else 1)
        return (out.logits[0] if all_logits else out.logits[0, -1]).float(), out

    def schedule(self, inputs: Molmo2Inputs, decode_steps: int = 0, label: str = "") -> TokenSchedule:
        layers = max(self.feature_blocks) + 1
        L, V = self.num_layers, inputs.visual_tokens
        return TokenSchedule(
            frames=inputs.frames,
            vision=inputs.info.get("vision_load") or uniform_vision(inputs.frames, self.tower_tokens, layers),
            projector_tokens=inputs.frames * self.tower_tokens, llm_visual=(V,) * L, llm_newline=(0,) * L,
            text_tokens=inputs.length - V, decode_steps=decode_steps, label=label)

    @torch.no_grad()
    def generate(self, inputs: Molmo2Inputs, max_new_tokens: int = 8,
                 eos_token_id: Optional[int] = None) -> Molmo2Generation:
        """Greedy decoding with the HF KV cache."""
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        out = self.forward(inputs, use_cache=True)
        first = out.logits[0, -1].float()
        tokens, cache, pos = [int(first.argmax())], out.cache, inputs.length
        while len(tokens) < max_new_tokens and (eos_token_id is None or tokens[-1] != eos_token_id):
            e = self.model.get_input_embeddings()(torch.tensor([[tokens[-1]]], device=self.device))
            out = self.model(inputs_embeds=e, cache=cache, use_cache=True,
                             position_ids=torch.tensor([[pos]], device=self.device))
            cache, pos = out.cache, pos + 1
            tokens.append(int(out.logits[0, -1].argmax()))
        label = getattr(self.method, "name", "") if self.method is not None else "vanilla"
        sched = self.schedule(inputs, decode_steps=len(tokens) - 1, label=label)
        self.last_schedule = sched
        text = self.tokenizer.decode(tokens) if hasattr(self.tokenizer, "decode") else ""
        return Molmo2Generation(tokens, first, sched, text)

    def _check_method(self) -> None:
        m = self.method
        if m is not None and getattr(m, "name", "") not in MOLMO2_METHODS:
            raise ValueError(f"method {m.name!r} is not supported on Molmo2; supported: {list(MOLMO2_METHODS)}")

    @torch.no_grad()
    def run(self, pixel_values: torch.Tensor, question: str, timestamps=None, max_new_tokens: int = 8,
            duration: Optional[float] = None, eos_token_id: Optional[int] = None) -> Molmo2Generation:
        """encode (in-ViT method if attached) -> pre-LLM reduction -> prompt -> greedy generation."""
        self._check_method()
        tokens = self.encode_video(pixel_values, timestamps)
        reduction = None
        if self.method is not None and self.method.has_pre_llm and not isinstance(tokens, Molmo2PrunedTokens):
            reduction = self.method.reduce(tokens)
        inputs = self.build_inputs(question, tokens, reduction, duration=duration)
        return self.generate(inputs, max_new_tokens=max_new_tokens, eos_token_id=eos_token_id)
