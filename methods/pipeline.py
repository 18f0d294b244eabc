"""The one request pipeline: encode video -> reduce -> build inputs -> prefill -> decode.

:func:`run` is the only code that orders these stages. Every caller goes through it: the
adapter's ``run`` (free-form generation), the cpu-tier accuracy harness (option-letter logits, no
decode), the efficiency harness (timed, fixed decode length) and the SynthVideoQA evaluation of
pruned cells. It records the TokenSchedule the request actually ran and, when a
:class:`StageTimer` is passed in, the seconds of every stage (the timer only observes; it adds no
second code path).

Stages (``STAGES``):

- ``encode``: ``adapter.encode_video`` (vision tower, projector, pooling, saliency signals; an
  attached in-ViT method runs its pruned tower here);
- ``reduce``: the method's pre-LLM ``reduce`` (skipped, and timed as ~0, for methods without one);
- ``build_inputs``: the prompt with the video (or its reduction) spliced in;
- ``prefill``: the LLM over the prompt with the method's inner plan, up to the first token's logits;
- ``decode``: ``decode_steps`` greedy steps (stopping early at ``eos_token_id`` when given).
"""
from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Optional

import torch

from costmodel.schedule import TokenSchedule
from methods.runtime import TEXT, InnerPlan, PrefillResult
from methods.types import PromptInputs, Reduction, VideoTokens

STAGES = ("encode", "reduce", "build_inputs", "prefill", "decode")


class StageTimer:
    """Observer of :func:`run`: ``start()`` before the first stage, ``lap(stage)`` after each.

    CPU: ``time.perf_counter``. CUDA: ``torch.cuda.Event`` pairs on the current stream, resolved
    with one synchronize in :meth:`seconds`, so timing adds no synchronisation between stages."""

    def __init__(self, device="cpu"):
        self.cuda = str(device).startswith("cuda")
        self.points: list = []
        self.stages: list[str] = []

    def _now(self):
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            return ev
        return time.perf_counter()

    def start(self) -> None:
        self.points, self.stages = [self._now()], []

    def lap(self, stage: str) -> None:
        self.points.append(self._now())
        self.stages.append(stage)

    def seconds(self) -> dict[str, float]:
        """Stage name -> seconds, in the order the stages ran."""
        if self.cuda:
            torch.cuda.synchronize()
            spans = [a.elapsed_time(b) / 1000.0 for a, b in zip(self.points, self.points[1:])]
        else:
            spans = [b - a for a, b in zip(self.points, self.points[1:])]
        return dict(zip(self.stages, spans))


@dataclass
class RequestResult:
    """Everything one request produced; ``tokens`` are the greedy tokens (the first from the
    prefill logits), ``step_logits`` the logits behind each of them."""

    video: VideoTokens
    reduction: Optional[Reduction]
    inputs: PromptInputs
    prefill: PrefillResult
    logits: torch.Tensor                 # prefill logits: (vocab,), or (L_out, vocab) with all_logits
    schedule: TokenSchedule
    tokens: list[int] = field(default_factory=list)
    step_logits: list = field(default_factory=list)
    seconds: dict = field(default_factory=dict)  # stage -> seconds (empty without a timer)

    @property
    def decode_steps(self) -> int:
        return max(0, len(self.tokens) - 1)


def _lap(timer: Optional[StageTimer], stage: str) -> None:
    if timer is not None:
        timer.lap(stage)


def _attached(adapter, method):
    """Attach ``method`` for the request unless it already is (or is None: the attached one runs);
    either way the method is checked against the adapter's family (``Method.attach``)."""
    if method is None or adapter.method is method:
        if adapter.method is not None:
            adapter.method.check_host(adapter)
        return nullcontext()
    return method.attach(adapter)


@torch.no_grad()
def run(adapter, method, pixel_values: torch.Tensor, question: str, *, timestamps=None,
        duration: Optional[float] = None, decode_steps: int = 0, eos_token_id: Optional[int] = None,
        use_cache: bool = True, all_logits: bool = False, timer: Optional[StageTimer] = None,
        label: Optional[str] = None) -> RequestResult:
    """One request of ``adapter`` with ``method`` (a Method, or None for whatever is attached).

    ``decode_steps`` greedy decode passes follow the prefill (0: prefill only); ``use_cache=False``
    runs the prefill without a KV cache and decodes by recomputing the prefix (the oracle of the
    ragged cache). ``label`` names the recorded schedule (default: the method's name)."""
    if decode_steps < 0:
        raise ValueError(f"decode_steps must be >= 0, got {decode_steps}")
    with _attached(adapter, method):
        active = adapter.method
        if timer is not None:
            timer.start()
        video = adapter.encode_video(pixel_values, timestamps)
        _lap(timer, "encode")
        reduction = active.reduce(video) if active is not None and active.has_pre_llm else None
        _lap(timer, "reduce")
        inputs = adapter.build_inputs(question, video, reduction, duration=duration)
        _lap(timer, "build_inputs")
        plan = resolve_plan(adapter, None)
        logits, res = adapter.prefill(inputs, plan, use_cache=use_cache, all_logits=all_logits)
        _lap(timer, "prefill")
        tokens, step_logits = [], []
        if not all_logits:
            tokens, step_logits = decode(adapter, inputs, res, logits, decode_steps, plan=plan,
                                         eos_token_id=eos_token_id, use_cache=use_cache)
            _lap(timer, "decode")
    name = label if label is not None else (getattr(active, "name", "") if active is not None else "")
    schedule = adapter.schedule(inputs, res, decode_steps=max(0, len(tokens) - 1), label=name)
    return RequestResult(video, reduction, inputs, res, logits, schedule, tokens, step_logits,
                         timer.seconds() if timer is not None else {})


def resolve_plan(adapter, plan: Optional[InnerPlan]) -> Optional[InnerPlan]:
    """``plan``, else the attached method's inner plan for this LLM; validated against its depth."""
    if plan is None and adapter.method is not None:
        plan = adapter.method.inner_plan(adapter.num_layers)
    if plan is not None:
        plan.validate(adapter.num_layers)
    return plan


def decode(adapter, inputs: PromptInputs, res: PrefillResult, first_logits: torch.Tensor, steps: int, *,
           plan: Optional[InnerPlan] = None, eos_token_id: Optional[int] = None,
           use_cache: bool = True) -> tuple[list[int], list[torch.Tensor]]:
    """Greedy tokens after a prefill: the first from ``first_logits``, then up to ``steps`` decode
    passes (fewer when ``eos_token_id`` comes out). Returns (tokens, logits behind each token)."""
    step_logits = [first_logits]
    tokens = [int(first_logits.argmax())]
    for step in range(steps):
        if eos_token_id is not None and tokens[-1] == eos_token_id:
            break
        if use_cache:
            logits = adapter.decode_step(tokens[-1], res, step)
        else:
            logits = _recompute_step(adapter, inputs, res, tokens, plan)
        step_logits.append(logits)
        tokens.append(int(logits.argmax()))
    return tokens, step_logits


def _recompute_step(adapter, inputs: PromptInputs, res: PrefillResult, tokens: list[int],
                    plan: Optional[InnerPlan]) -> torch.Tensor:
    """Next-token logits from the whole prefix, no cache, replaying the kept sets of the prefill."""
    dev = inputs.inputs_embeds.device
    gen = adapter.embed_text(torch.tensor(tokens, device=dev))
    new_pos = res.next_position + torch.arange(len(tokens), device=dev)
    if inputs.position_ids.dim() == 2:  # (3, L) M-RoPE ids: generated text has equal axes
        new_pos = new_pos.expand(inputs.position_ids.shape[0], -1)
    extended = PromptInputs(
        torch.cat([inputs.inputs_embeds, gen[None]], dim=1),
        torch.cat([inputs.position_ids, new_pos], dim=-1),
        torch.cat([inputs.kinds, torch.full((len(tokens),), TEXT, device=dev)]),
        None, inputs.frames, inputs.tower_tokens, inputs.info)
    logits, _ = adapter.prefill(extended, plan, use_cache=False, forced_keeps=res.stage_keeps)
    return logits
