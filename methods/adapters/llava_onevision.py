"""Adapter for HF ``LlavaOnevisionForConditionalGeneration`` in the two settings the papers use.

================  ==============================  ===========================================
setting           pooling of the 27x27 grid        newline tokens / prompt
================  ==============================  ===========================================
llava-onevision   bilinear to ceil(h/2) (196/fr)   one ``image_newline`` after the whole video
llava-video       avg-pool stride 2 (13x13=169)    a newline after every grid row; time prompt
================  ==============================  ===========================================

The adapter implements :class:`methods.adapters.base.VideoLLMAdapter` from three small parts:
the encoder (:mod:`.llava_onevision_encoder`: tower, projector, pooling, saliency signals), the
prompt builder (:mod:`.llava_onevision_prompt`) and the runtime call (``prefill`` /
``decode_step``: :mod:`methods.runtime`'s own decoder-layer loop over the HF language model).
Model construction lives in :mod:`.llava_onevision_loading`. The HF model instance is never
modified; :mod:`methods.pipeline` orders the stages of a request.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch

from costmodel.schedule import TokenSchedule, uniform_vision
from methods.runtime import InnerPlan, PrefillResult, llm_decode_step, llm_prefill
from methods.types import Reduction, VideoTokens

from . import llava_onevision_encoder as encoder
from . import llava_onevision_loading as loading
from . import llava_onevision_prompt as prompt
from .base import Generation, GreedyRequests, HFModelDims, PromptInputs
from .text import ByteTokenizer

SETTINGS = {
    "llava-onevision": {"pool": "bilinear", "newline": "one_token", "time_prompt": False},
    "llava-video": {"pool": "average", "newline": "grid", "time_prompt": True},
}
EXPECTED_MODEL_TYPE = loading.EXPECTED_MODEL_TYPE
SIGLIP_MEAN_STD = loading.SIGLIP_MEAN_STD

__all__ = ["LlavaOnevisionAdapter", "SETTINGS", "PromptInputs", "Generation"]


def _check_setting(setting: str) -> str:
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; allowed: {sorted(SETTINGS)}")
    return setting


class LlavaOnevisionAdapter(HFModelDims, GreedyRequests):
    """Runs one HF LLaVA-OV model instance with pre-LLM reductions and inner-LLM plans."""

    def __init__(self, model, setting: str = "llava-onevision", tokenizer=None,
                 image_mean: Sequence[float] = SIGLIP_MEAN_STD[0],
                 image_std: Sequence[float] = SIGLIP_MEAN_STD[1], map_head_seed: int = 0,
                 time_prompt: Optional[bool] = None):
        if getattr(model.config, "model_type", None) != EXPECTED_MODEL_TYPE:
            raise ValueError(f"LlavaOnevisionAdapter needs model_type {EXPECTED_MODEL_TYPE!r}, "
                             f"got {getattr(model.config, 'model_type', None)!r}")
        self.model = model  # left in the mode it is in (constructors below return eval models)
        self.setting = _check_setting(setting)
        # None: the setting's own (LLaVA-Video prepends its time instruction); a bool overrides it for
        # models trained without it (the cpu tier's tiny LLaVA-Video: every video shares frame times)
        if time_prompt is not None and not isinstance(time_prompt, bool):
            raise ValueError(f"time_prompt must be None or a bool, got {time_prompt!r}")
        self._time_prompt = time_prompt
        self.tokenizer = tokenizer if tokenizer is not None else ByteTokenizer(self.text_config.vocab_size)
        self.image_mean = tuple(float(x) for x in image_mean)
        self.image_std = tuple(float(x) for x in image_std)
        self.method = None                # attached Method (see methods.attach.apply_method)
        self.last_schedule: Optional[TokenSchedule] = None
        self._map_head = None
        self._map_head_seed = map_head_seed

    @property
    def family(self) -> str:
        """The family a method declares it runs on (``Method.families``): the setting's name."""
        return self.setting

    # ---- construction --------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path, setting: str = "llava-onevision", dtype=torch.float32,
                        device="cpu", **kwargs) -> "LlavaOnevisionAdapter":
        """Load a local HF checkpoint directory (never downloads)."""
        model, tokenizer, mean, std = loading.load_checkpoint(path, dtype=dtype, device=device)
        return cls(model, setting, tokenizer=tokenizer, image_mean=mean, image_std=std, **kwargs)

    @classmethod
    def from_config(cls, config_or_arch_name: Union[str, dict, object], setting: str = "llava-onevision",
                    dtype=torch.float32, device="cpu", seed: int = 0, attn_implementation: str = "sdpa"):
        """Random weights from an HF config (object or dict) or an architecture name (full size)."""
        model = loading.random_model(config_or_arch_name, dtype=dtype, device=device, seed=seed,
                                     attn_implementation=attn_implementation)
        return cls(model, setting, map_head_seed=seed)

    @classmethod
    def tiny(cls, setting: str = "llava-onevision", seed: int = 0, layers: int = 4, image_size: int = 56,
             vocab_size: int = 1000, attn_implementation: str = "sdpa") -> "LlavaOnevisionAdapter":
        """Tiny random model of the real architecture (see ``loading.tiny_config``)."""
        return cls.from_config(loading.tiny_config(layers, image_size, vocab_size), setting=setting,
                               seed=seed, attn_implementation=attn_implementation)

    # ---- dimensions ------------------------------------------------------------------------
    @property
    def vision_layers(self) -> int:
        return len(self.model.model.vision_tower.encoder.layers)

    @property
    def image_size(self) -> int:
        return int(self.vision_config.image_size)

    @property
    def tower_grid(self) -> tuple[int, int]:
        s = self.vision_config.image_size // self.vision_config.patch_size
        return (s, s)

    @property
    def newline_policy(self) -> str:
        return SETTINGS[self.setting]["newline"]

    @property
    def time_prompt(self) -> bool:
        if self._time_prompt is not None:
            return self._time_prompt
        return SETTINGS[self.setting]["time_prompt"]

    @property
    def grid(self) -> tuple[int, int]:
        h, w = self.tower_grid
        if SETTINGS[self.setting]["pool"] == "bilinear":
            return (math.ceil(h / 2), math.ceil(w / 2))
        return (h // 2, w // 2)

    @property
    def tokens_per_frame(self) -> int:
        h, w = self.grid
        return h * w

    @property
    def tower_tokens(self) -> int:
        h, w = self.tower_grid
        return h * w - (1 if self.config.vision_feature_select_strategy == "default" else 0)

    def arch_spec(self, name: Optional[str] = None, default_frames: int = 32):
        """costmodel ArchSpec of this model instance (for nominal schedules and FLOPs)."""
        from costmodel.arch import ArchSpec

        full = self.config.to_dict()
        d = {"model_type": full["model_type"], "tie_word_embeddings": full.get("tie_word_embeddings", False),
             "text_config": {k: v for k, v in full["text_config"].items() if isinstance(v, (int, float, str, bool))},
             "vision_config": {k: v for k, v in full["vision_config"].items() if isinstance(v, (int, float, str, bool))}}
        h, w = self.tower_grid
        d["_video"] = {"default_frames": default_frames, "grid": [h, w], "pooled_grid": list(self.grid),
                       "pooling": SETTINGS[self.setting]["pool"], "tokens_per_frame": self.tokens_per_frame,
                       "newline": self.newline_policy, "vision_layers_run": self.vision_layers}
        return ArchSpec.from_hf_config(d, name or f"adapter-{self.setting}")

    # ---- encoder ---------------------------------------------------------------------------
    def load_video(self, path, frames: int):
        """Decode and preprocess a local video for this model (see methods.video_io)."""
        from methods.video_io import load_video

        return load_video(path, frames, self.image_size, self.image_mean, self.image_std)

    def pool_like_features(self, x: torch.Tensor) -> torch.Tensor:
        """(F, T, C) tower-grid tokens -> (F, N, C) pooled like the features."""
        return encoder.pool_to_grid(x, self.tower_grid, self.grid, SETTINGS[self.setting]["pool"])

    def feature_layer_index(self) -> int:
        """Index into the tower's hidden states (0 = embeddings) of the feature layer."""
        return encoder.feature_layer_index(self.config, self.model.model.vision_tower)

    def map_head(self):
        """The tower's SigLIP MAP head, else one built once from the vision config (seeded)."""
        tower = self.model.model.vision_tower
        if getattr(tower, "use_head", False):
            return tower.head
        if self._map_head is None:
            self._map_head = encoder.build_map_head(self.vision_config, self._map_head_seed,
                                                    self.device, self.dtype)
        return self._map_head

    def set_map_head(self, head) -> None:
        """Use ``head`` (e.g. SigLIP so400m's real MAP head, which HF LLaVA checkpoints lack)."""
        self._map_head = head.to(device=self.device, dtype=self.dtype).eval()

    def encode_video(self, pixel_values: torch.Tensor, timestamps=None,
                     signals: Sequence[str] = encoder.DEFAULT_SIGNALS, keys: bool = True,
                     frame_chunk: int = 8) -> VideoTokens:
        """(F, 3, S, S) normalised frames -> VideoTokens (features after projection + pooling).
        An attached method with an in-ViT stage runs its own pruned tower forward instead."""
        if self.method is not None and self.method.runs_in_vit:
            return self.method.encode_in_vit(self, pixel_values, timestamps)
        return encoder.encode_video(self, pixel_values, timestamps, signals=signals, keys=keys,
                                    frame_chunk=frame_chunk)

    # ---- prompt ----------------------------------------------------------------------------
    def prompt_text(self, question: str, tokens: VideoTokens, duration: Optional[float] = None) -> str:
        return prompt.prompt_text(question, tokens, self.time_prompt, duration)

    def build_inputs(self, question: str, tokens: VideoTokens, reduction: Optional[Reduction] = None,
                     duration: Optional[float] = None) -> PromptInputs:
        """Chat prompt with the video (or its reduction) spliced in, newlines laid out per policy.

        Positions: ``contiguous`` (0..L-1) unless ``reduction.positions == 'original'``, in which
        case each token gets the position its source had in the unpruned prompt."""
        return prompt.build_inputs(self, question, tokens, reduction, duration)

    def embed_text(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lm.embed_tokens(ids)

    # ---- runtime ---------------------------------------------------------------------------
    @torch.no_grad()
    def prefill(self, inputs: PromptInputs, plan: Optional[InnerPlan] = None, use_cache: bool = True,
                all_logits: bool = False, forced_keeps=None):
        """Run the prompt; returns (logits, PrefillResult). Logits: (vocab,) of the last token, or
        (L_out, vocab) for every surviving token when ``all_logits``. ``plan`` None: the attached
        method's inner plan."""
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
        """The TokenSchedule this prefill actually ran (mask mode: the alive tokens)."""
        return TokenSchedule(
            frames=inputs.frames,
            vision=inputs.info.get("vision_load")  # recorded by in-ViT pruning (STTS), else full
            or uniform_vision(inputs.frames, self.tower_grid[0] * self.tower_grid[1], self.vision_layers),
            projector_tokens=inputs.frames * self.tower_tokens,
            llm_visual=tuple(res.llm_visual), llm_newline=tuple(res.llm_newline),
            text_tokens=res.text_tokens, decode_steps=decode_steps, label=label)
