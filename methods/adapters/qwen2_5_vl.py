"""Adapter for HF ``Qwen2_5_VLForConditionalGeneration`` (Tango's third backbone, Qwen2.5-VL-7B).

Where things are (transformers 5.x): the vision tower ``model.model.visual`` (Conv3d patch embed
with temporal patch 2, window-attention blocks and the full-attention blocks
``fullatt_block_indexes``, the 2x2 ``merger`` that projects to the LLM width), the text model
``model.model.language_model`` (Qwen2-style decoder layers with M-RoPE, ``rotary_emb`` taking
(3, batch, L) position ids) and ``model.lm_head``.

Built from three small parts like the LLaVA-OV adapter: the encoder (:mod:`.qwen2_5_vl_encoder`:
tower, merger, saliency signals in raster order), the prompt builder (:mod:`.qwen2_5_vl_prompt`:
chat layout and 3-D M-RoPE positions of the full prompt, columns kept per surviving token) and
:mod:`methods.runtime`'s decoder-layer loop (``prefill`` / ``decode_step``), which takes the
(3, L) positions. Loading lives in :mod:`.qwen2_5_vl_loading`. The HF model instance is never
modified; :mod:`methods.pipeline` orders the stages of a request.

The methods' "frames" here are the tower's temporal groups (two input frames each); the grid is
the merged grid (e.g. 16x16 = 256 tokens per group at 448 px), with no newline tokens.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch

from costmodel.schedule import TokenSchedule
from methods.runtime import InnerPlan, PrefillResult, llm_decode_step, llm_prefill
from methods.types import Reduction, VideoTokens

from . import qwen2_5_vl_encoder as encoder
from . import qwen2_5_vl_loading as loading
from . import qwen2_5_vl_prompt as prompt
from .base import GreedyRequests, HFModelDims, PromptInputs
from .text import ByteTokenizer

__all__ = ["Qwen2_5_VLAdapter"]

class Qwen2_5_VLAdapter(HFModelDims, GreedyRequests):
    """Runs one HF Qwen2.5-VL instance with pre-LLM reductions and inner-LLM plans."""

    #: the family a method declares it runs on (``Method.families``)
    family = "qwen2.5-vl"
    #: the tower has no attention-pooling head; Tango's saliency is ``vit_global_query_attn``
    has_map_head = False

    def __init__(self, model, tokenizer=None, image_mean: Sequence[float] = loading.QWEN_MEAN_STD[0],
                 image_std: Sequence[float] = loading.QWEN_MEAN_STD[1], image_size: int = 448):
        if getattr(model.config, "model_type", None) != loading.EXPECTED_MODEL_TYPE:
            raise ValueError(f"Qwen2_5_VLAdapter needs model_type {loading.EXPECTED_MODEL_TYPE!r}, "
                             f"got {getattr(model.config, 'model_type', None)!r}")
        self.model = model
        self.tokenizer = tokenizer if tokenizer is not None else ByteTokenizer(self.text_config.vocab_size)
        self.image_mean = tuple(float(x) for x in image_mean)
        self.image_std = tuple(float(x) for x in image_std)
        unit = self.vision_config.patch_size * self.vision_config.spatial_merge_size
        if image_size % unit:
            raise ValueError(f"image_size must be a multiple of patch_size * spatial_merge_size = {unit}, "
                             f"got {image_size}")
        self.image_size = int(image_size)
        self.method = None
        self.last_schedule: Optional[TokenSchedule] = None

    # ---- construction --------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path, dtype=torch.float32, device="cpu", **kwargs) -> "Qwen2_5_VLAdapter":
        """Load a local HF checkpoint directory (never downloads)."""
        model, tokenizer, mean, std = loading.load_checkpoint(path, dtype=dtype, device=device)
        return cls(model, tokenizer=tokenizer, image_mean=mean, image_std=std, **kwargs)

    @classmethod
    def from_config(cls, config: Union[str, dict, object], dtype=torch.float32, device="cpu", seed: int = 0,
                    attn_implementation: str = "sdpa", image_size: Optional[int] = None) -> "Qwen2_5_VLAdapter":
        """Random weights from an HF config (object or dict) or an architecture name (``qwen2.5-vl-7b``:
        costmodel's JSON, frames of its ``_video.frame_pixels``)."""
        if image_size is None:
            image_size = 448
            if isinstance(config, str):
                image_size = int(loading.arch_config_dict(config)["_video"]["frame_pixels"][0])
        model = loading.random_model(config, dtype=dtype, device=device, seed=seed,
                                     attn_implementation=attn_implementation)
        return cls(model, image_size=image_size)

    @classmethod
    def tiny(cls, seed: int = 0, text_layers: int = 4, image_size: int = 112, vocab_size: int = 1000,
             attn_implementation: str = "sdpa") -> "Qwen2_5_VLAdapter":
        """Tiny random model of the real architecture (see ``loading.tiny_config``); 112-px frames
        give an 8x8 patch grid, 4x4 merged tokens per temporal group, in 4 windows."""
        return cls.from_config(loading.tiny_config(text_layers, vocab_size), seed=seed,
                               attn_implementation=attn_implementation, image_size=image_size)

    def save_pretrained(self, path):
        """HF layout (config.json + model.safetensors) plus preprocessor_config.json (mean/std)."""
        return loading.save_checkpoint(self.model, path, self.image_mean, self.image_std)

    # ---- dimensions ------------------------------------------------------------------------
    @property
    def vision_layers(self) -> int:
        return int(self.vision_config.depth)

    @property
    def saliency_block(self) -> int:
        """The tower's last full-attention block, where the saliency signals are computed."""
        full = list(self.vision_config.fullatt_block_indexes)
        if not full:
            raise ValueError("the vision tower has no full-attention block (fullatt_block_indexes is empty)")
        return int(full[-1])

    @property
    def tower_grid(self) -> tuple[int, int]:
        s = self.image_size // self.vision_config.patch_size
        return (s, s)

    @property
    def grid(self) -> tuple[int, int]:
        h, w = self.tower_grid
        m = self.vision_config.spatial_merge_size
        return (h // m, w // m)

    @property
    def tokens_per_frame(self) -> int:
        h, w = self.grid
        return h * w

    @property
    def tower_tokens(self) -> int:
        """Patches per temporal group inside the tower."""
        h, w = self.tower_grid
        return h * w

    @property
    def newline_policy(self) -> str:
        return "none"

    def arch_spec(self, name: Optional[str] = None, default_frames: int = 32):
        """costmodel ArchSpec of this instance; ``default_frames`` counts temporal groups."""
        from costmodel.arch import ArchSpec

        full = self.config.to_dict()
        keep = lambda d: {k: v for k, v in d.items() if isinstance(v, (int, float, str, bool, list))}
        d = {"model_type": full["model_type"], "tie_word_embeddings": False,
             "text_config": keep(full["text_config"]), "vision_config": keep(full["vision_config"])}
        d["_video"] = {"default_frames": default_frames, "frame_pixels": [self.image_size, self.image_size],
                       "grid": list(self.tower_grid), "pooled_grid": list(self.grid),
                       "tokens_per_frame": self.tokens_per_frame, "newline": "none"}
        return ArchSpec.from_hf_config(d, name or "adapter-qwen2.5-vl")

    # ---- encoder ---------------------------------------------------------------------------
    def load_video(self, path, frames: int):
        """Decode and preprocess a local video for this model (see methods.video_io)."""
        from methods.video_io import load_video

        return load_video(path, frames, self.image_size, self.image_mean, self.image_std)

    def encode_video(self, pixel_values: torch.Tensor, timestamps=None,
                     signals: Sequence[str] = encoder.DEFAULT_SIGNALS, keys: bool = True) -> VideoTokens:
        """(F, 3, S, S) normalised frames -> VideoTokens over the F/2 temporal groups."""
        if self.method is not None:
            self.method.check_host(self)
        return encoder.encode_video(self, pixel_values, timestamps, signals=signals, keys=keys)

    # ---- prompt ----------------------------------------------------------------------------
    def build_inputs(self, question: str, tokens: VideoTokens, reduction: Optional[Reduction] = None,
                     duration: Optional[float] = None) -> PromptInputs:
        """Chat prompt with the video (or its reduction); (3, L) M-RoPE positions of the full prompt,
        one column per surviving token."""
        return prompt.build_inputs(self, question, tokens, reduction, duration)

    def embed_text(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lm.embed_tokens(ids)

    # ---- runtime ---------------------------------------------------------------------------
    @torch.no_grad()
    def prefill(self, inputs: PromptInputs, plan: Optional[InnerPlan] = None, use_cache: bool = True,
                all_logits: bool = False, forced_keeps=None):
        """Run the prompt; (logits, PrefillResult). ``plan`` None: the attached method's plan."""
        from methods.pipeline import resolve_plan

        plan = resolve_plan(self, plan)
        res = llm_prefill(self.lm, inputs.inputs_embeds, inputs.position_ids, inputs.kinds, plan,
                          use_cache=use_cache, forced_keeps=forced_keeps)
        hidden = res.hidden[0] if all_logits else res.hidden[0, -1]
        return self.model.lm_head(hidden).float(), res

    @torch.no_grad()
    def decode_step(self, token: int, prefill: PrefillResult, step: int) -> torch.Tensor:
        """(vocab,) logits after feeding ``token`` at decode step ``step`` (0-based) on the cache."""
        e = self.embed_text(torch.tensor([[token]], device=self.device))
        h = llm_decode_step(self.lm, e, prefill.cache, prefill.next_position + step)
        return self.model.lm_head(h[0, -1]).float()

    def schedule(self, inputs: PromptInputs, res: PrefillResult, decode_steps: int = 0,
                 label: str = "") -> TokenSchedule:
        """The TokenSchedule this prefill ran; the tower load per block (windows or whole groups)."""
        from costmodel.nominal import full_vision

        return TokenSchedule(
            frames=inputs.frames, vision=full_vision(self.arch_spec(), inputs.frames),
            projector_tokens=inputs.frames * self.tokens_per_frame,
            llm_visual=tuple(res.llm_visual), llm_newline=tuple(res.llm_newline),
            text_tokens=res.text_tokens, decode_steps=decode_steps, label=label)
