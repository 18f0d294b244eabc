"""The adapter protocol: what :mod:`methods.pipeline` needs from one model family.

An adapter wraps one HF model instance of one family (LLaVA-OneVision / LLaVA-Video:
``llava_onevision``; Molmo2: ``molmo2``; Qwen2.5-VL: ``qwen2_5_vl``) and knows *where things are* in it: the vision tower and the
saliency signals it can give, how a prompt is laid out around the video, which decoder stack
:mod:`methods.runtime` runs, and the model's :class:`costmodel.arch.ArchSpec`. It does not order
the stages of a request: :func:`methods.pipeline.run` does, for every caller.

A new family implements the members below (a subclass of nothing; ``isinstance(x,
VideoLLMAdapter)`` checks the names at run time):

- ``method``: the attached :class:`methods.base.Method` or None (set by ``apply_method``);
  ``encode_video`` runs the method's in-ViT stage when it declares one (``method.runs_in_vit``).
- ``num_layers``, ``device``, ``dtype``, ``tokenizer`` (with ``decode`` for ``Generation.text``).
- ``encode_video(pixel_values, timestamps)`` -> :class:`methods.types.VideoTokens`.
- ``build_inputs(question, tokens, reduction, duration)`` -> :class:`PromptInputs`.
- ``prefill(inputs, plan, use_cache, all_logits, forced_keeps)`` -> (logits, ``PrefillResult``):
  ``plan`` None means the attached method's inner plan.
- ``decode_step(token, prefill, step)`` -> (vocab,) logits of one cached greedy step.
- ``embed_text(ids)`` -> (n, D) input embeddings (the cache-free decode oracle appends them).
- ``schedule(inputs, prefill, decode_steps, label)`` -> the TokenSchedule a prefill actually ran.
- ``arch_spec(name, default_frames)`` -> ``ArchSpec`` of this model instance.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Protocol, runtime_checkable

import torch

from costmodel.schedule import TokenSchedule
from methods.runtime import InnerPlan, PrefillResult
from methods.types import PromptInputs, Reduction, VideoTokens  # PromptInputs: re-exported


@dataclass
class Generation:
    """Greedy output. ``schedule.decode_steps`` counts decode forward passes: ``len(tokens) - 1``
    (the first token comes from the prefill logits; costmodel's step i attends kv + i + 1 keys)."""

    tokens: list[int]
    schedule: TokenSchedule
    prefill_logits: torch.Tensor         # (vocab,) logits of the first generated token
    text: str = ""
    step_logits: list = field(default_factory=list)  # (vocab,) logits behind every generated token


@runtime_checkable
class VideoLLMAdapter(Protocol):
    """The members :mod:`methods.pipeline` calls (see the module docstring)."""

    method: Any
    tokenizer: Any

    @property
    def num_layers(self) -> int: ...

    @property
    def device(self) -> torch.device: ...

    @property
    def dtype(self) -> torch.dtype: ...

    def encode_video(self, pixel_values: torch.Tensor, timestamps=None) -> VideoTokens: ...

    def build_inputs(self, question: str, tokens: VideoTokens, reduction: Optional[Reduction] = None,
                     duration: Optional[float] = None) -> PromptInputs: ...

    def prefill(self, inputs: PromptInputs, plan: Optional[InnerPlan] = None, use_cache: bool = True,
                all_logits: bool = False, forced_keeps=None) -> tuple[torch.Tensor, PrefillResult]: ...

    def decode_step(self, token: int, prefill: PrefillResult, step: int) -> torch.Tensor: ...

    def embed_text(self, ids: torch.Tensor) -> torch.Tensor: ...

    def schedule(self, inputs: PromptInputs, prefill: PrefillResult, decode_steps: int = 0,
                 label: str = "") -> TokenSchedule: ...

    def arch_spec(self, name: Optional[str] = None, default_frames: int = 32): ...


def check_checkpoint_dir(path, model_type: str, hf_class: str) -> Path:
    """``path`` as a local HF checkpoint directory of ``model_type``; the error names what is wrong."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"checkpoint directory {str(path)!r} does not exist (expected a local HF "
                         f"checkpoint with model_type {model_type!r})")
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise ValueError(f"{str(path)!r} has no config.json (expected an HF checkpoint with "
                         f"model_type {model_type!r})")
    found = json.loads(cfg_file.read_text()).get("model_type")
    if found != model_type:
        raise ValueError(f"{str(path)!r} holds model_type {found!r}; expected {model_type!r} ({hf_class})")
    return path


def strip_private(d):
    """Drop project keys (``_video``, ``_source...``) that are not HF config fields."""
    if isinstance(d, dict):
        return {k: strip_private(v) for k, v in d.items() if not str(k).startswith("_")}
    return d


def shipped_arch_config(name: str, model_type: str) -> dict:
    """The HF config dict of a named full-size architecture (costmodel's shipped JSON), checked to be
    of ``model_type``."""
    from costmodel.arch import ARCH_DIR

    f = ARCH_DIR / f"{name}.json"
    if not f.is_file():
        raise ValueError(f"unknown architecture {name!r}: no {f.name} in costmodel/archs")
    d = json.loads(f.read_text())
    if d.get("model_type") != model_type:
        raise ValueError(f"architecture {name!r} has model_type {d.get('model_type')!r}; this adapter "
                         f"needs {model_type!r}")
    return d


def config_kwargs(d: dict, model_type: str) -> dict:
    """An HF config dict as keyword arguments of its config class: project keys and ``model_type``
    dropped, after checking it is ``model_type`` (absent counts as right)."""
    d = strip_private(d)
    if d.get("model_type", model_type) != model_type:
        raise ValueError(f"config has model_type {d.get('model_type')!r}; expected {model_type!r}")
    d.pop("model_type", None)
    return d


def load_processor_files(path: Path, default_mean_std) -> tuple:
    """(tokenizer or None, image_mean, image_std) from a checkpoint's processor files, if present."""
    mean, std = default_mean_std
    pre = Path(path) / "preprocessor_config.json"
    if pre.is_file():
        d = json.loads(pre.read_text())
        mean, std = d.get("image_mean", mean), d.get("image_std", std)
    tokenizer = None
    if any((Path(path) / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json")):
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    return tokenizer, mean, std


class HFModelDims:
    """Config and decoder-stack accessors shared by adapters that wrap an HF ``...ForConditionalGeneration``
    (``self.model``) whose inner model holds ``language_model``."""

    model: Any

    @property
    def config(self):
        return self.model.config

    @property
    def vision_config(self):
        return self.model.config.vision_config

    @property
    def text_config(self):
        return self.model.config.text_config

    @property
    def lm(self):
        return self.model.model.language_model

    @property
    def num_layers(self) -> int:
        return len(self.lm.layers)

    @property
    def device(self):
        return self.model.lm_head.weight.device

    @property
    def dtype(self):
        return self.model.lm_head.weight.dtype


class GreedyRequests:
    """``generate`` and ``run`` for an adapter on the protocol: greedy text through
    :mod:`methods.pipeline`, the schedule kept in ``last_schedule``."""

    method: Any
    tokenizer: Any
    last_schedule: Optional[TokenSchedule] = None

    @torch.no_grad()
    def generate(self, inputs: PromptInputs, max_new_tokens: int = 8, plan: Optional[InnerPlan] = None,
                 use_cache: bool = True, eos_token_id: Optional[int] = None) -> Generation:
        """Greedy decoding of a built prompt. ``use_cache=False`` recomputes the full prefix every
        step, replaying the kept sets chosen at prefill (the oracle for the ragged KV cache)."""
        from methods.pipeline import decode, resolve_plan

        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        plan = resolve_plan(self, plan)
        logits, res = self.prefill(inputs, plan, use_cache=use_cache)
        tokens, step_logits = decode(self, inputs, res, logits, max_new_tokens - 1, plan=plan,
                                     eos_token_id=eos_token_id, use_cache=use_cache)
        sched = self.schedule(inputs, res, decode_steps=len(tokens) - 1,
                              label=getattr(self.method, "name", "") if self.method is not None else "")
        return self._generation(tokens, sched, step_logits)

    @torch.no_grad()
    def run(self, pixel_values: torch.Tensor, question: str, timestamps=None, max_new_tokens: int = 8,
            duration: Optional[float] = None, eos_token_id: Optional[int] = None) -> Generation:
        """One request with the attached method (``methods.pipeline.run``), greedy generation."""
        from methods.pipeline import run

        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        r = run(self, None, pixel_values, question, timestamps=timestamps, duration=duration,
                decode_steps=max_new_tokens - 1, eos_token_id=eos_token_id)
        return self._generation(r.tokens, r.schedule, r.step_logits)

    def _generation(self, tokens: list[int], schedule: TokenSchedule, step_logits: list) -> Generation:
        self.last_schedule = schedule
        text = self.tokenizer.decode(tokens) if hasattr(self.tokenizer, "decode") else ""
        return Generation(tokens=tokens, schedule=schedule, prefill_logits=step_logits[0], text=text,
                          step_logits=step_logits)


def visual_inputs(tokens: VideoTokens, reduction: Optional[Reduction]) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (M, D), flat source index (M,)) of the tokens entering the LLM: every token of
    ``tokens``, or the reduction's (checked against the video's dimensions)."""
    F_, N, D = tokens.features.shape
    dev = tokens.features.device
    if reduction is None:
        return tokens.features.reshape(F_ * N, D), torch.arange(F_ * N, device=dev)
    if reduction.features.shape[1] != D:
        raise ValueError(f"Reduction features have D={reduction.features.shape[1]}, model expects {D}")
    src = reduction.source.to(dev)
    if src.numel() and (int(src.min()) < 0 or int(src.max()) >= F_ * N):
        raise ValueError(f"Reduction.source must lie in [0, {F_ * N}), got [{int(src.min())}, {int(src.max())}]")
    return reduction.features, src
