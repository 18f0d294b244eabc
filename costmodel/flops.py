"""FLOPs of a TokenSchedule in two named conventions.

``paper``  The FastV per-layer formula the papers use (HoliTom, very likely Tango):
           Σ_l (4·n_l·d² + 2·n_l²·d + 2·n_l·d·m) over the *visual feature tokens* n_l entering LLM
           layer l, prefill only. The formula counts one multiply-add as one operation, so the papers'
           "TFLOPs" are MACs of a simplified model (MHA projections, two-matrix FFN, full attention):
           ``paper_flops`` returns that paper number; a ``paper_table`` row stores the same terms as MACs.
``exact``  Architecture-aware per-layer x per-stage table, LLM-Viewer style: vision tower, projector,
           pooling, LLM prefill (GQA widths, SwiGLU's three matrices, causal or full attention),
           LM head, decode with the KV cache. Rows store MACs; FLOPs = 2·MACs. Element-wise work (softmax,
           activations, RoPE rotation, residual adds) is not counted, as in both oracles.

Row ``kind`` says what each oracle counts (see oracles.py): ``linear``/``conv``/``attention`` are counted by fvcore (as MACs) and FlopCounterMode (as
2·MACs); ``layernorm`` and ``interp`` (bilinear upsample) by fvcore only, with its conventions (5 and
4 per output element); ``rmsnorm`` and ``pool`` (avg_pool2d) by neither.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from .arch import ArchSpec, LLMSpec
from .schedule import TokenSchedule

STAGES = ("vision", "projector", "pooling", "prefill", "lm_head", "decode")
KINDS = ("linear", "conv", "attention", "layernorm", "rmsnorm", "interp", "pool")
FVCORE_KINDS = frozenset({"linear", "conv", "attention", "layernorm", "interp"})
FLOPCOUNTER_KINDS = frozenset({"linear", "conv", "attention"})
LM_HEAD_MODES = ("last", "all", "none")
UNITS = ("flops", "macs")


@dataclass(frozen=True)
class CostRow:
    stage: str
    layer: int  # -1 for stage-level ops (patch embedding, rotary frequencies, LM head)
    op: str
    kind: str
    macs: int

    @property
    def flops(self) -> int:
        return 2 * self.macs


@dataclass(frozen=True)
class CostTable:
    rows: tuple[CostRow, ...]
    convention: str
    label: str = ""

    def select(self, stage: str | None = None, kinds: Iterable[str] | None = None,
               layer: int | None = None) -> list[CostRow]:
        if stage is not None and stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; allowed: {STAGES}")
        kinds = None if kinds is None else frozenset(kinds)
        if kinds is not None and not kinds <= set(KINDS):
            raise ValueError(f"unknown kinds {sorted(kinds - set(KINDS))}; allowed: {KINDS}")
        return [r for r in self.rows if (stage is None or r.stage == stage)
                and (kinds is None or r.kind in kinds) and (layer is None or r.layer == layer)]

    def total(self, stage: str | None = None, unit: str = "flops", kinds: Iterable[str] | None = None,
              layer: int | None = None) -> int:
        if unit not in UNITS:
            raise ValueError(f"unknown unit {unit!r}; allowed: {UNITS}")
        macs = sum(r.macs for r in self.select(stage, kinds, layer))
        return 2 * macs if unit == "flops" else macs

    def by_stage(self, unit: str = "flops") -> dict[str, int]:
        return {s: self.total(s, unit) for s in STAGES if self.select(s)}

    def per_layer(self, stage: str, unit: str = "flops") -> dict[int, int]:
        out: dict[int, int] = {}
        for r in self.select(stage):
            out[r.layer] = out.get(r.layer, 0) + (r.flops if unit == "flops" else r.macs)
        return out

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame([{"stage": r.stage, "layer": r.layer, "op": r.op, "kind": r.kind,
                              "macs": r.macs, "flops": r.flops} for r in self.rows],
                            columns=["stage", "layer", "op", "kind", "macs", "flops"])


# ---- paper convention -----------------------------------------------------------------------
def paper_layer(n: int, d: int, m: int) -> dict[str, int]:
    """FastV's per-layer terms (docs/sources.md#flops-convention): projections 4nd², attention 2n²d, FFN 2ndm."""
    return {"proj": 4 * n * d * d, "attn": 2 * n * n * d, "mlp": 2 * n * d * m}


def paper_table(arch: ArchSpec, schedule: TokenSchedule) -> CostTable:
    _check_depth(arch, schedule)
    d, m = arch.llm.hidden, arch.llm.intermediate
    rows = tuple(CostRow("prefill", l, op, "attention" if op == "attn" else "linear", v)
                 for l, n in enumerate(schedule.llm_visual) for op, v in paper_layer(n, d, m).items())
    return CostTable(rows, "paper", schedule.label)


def paper_flops(arch: ArchSpec, schedule: TokenSchedule) -> int:
    """The papers' "FLOPs" number (e.g. 40.77e12 for LLaVA-OV-7B at 32x196 tokens)."""
    return paper_table(arch, schedule).total(unit="macs")


# ---- exact convention -----------------------------------------------------------------------
def exact_costs(arch: ArchSpec, schedule: TokenSchedule, *, causal: bool = False, lm_head: str = "last",
                norms: bool = True, stages: Sequence[str] = STAGES) -> CostTable:
    """Per-layer x per-stage MACs of one request (batch 1).

    causal: False counts full n² attention (what SDPA/eager kernels compute and what the oracles
    count); True counts the n(n+1)/2 useful query-key pairs.
    lm_head: "last" (generation: logits of the last prompt token), "all" (HF's default forward),
    or "none".
    """
    if lm_head not in LM_HEAD_MODES:
        raise ValueError(f"unknown lm_head mode {lm_head!r}; allowed: {LM_HEAD_MODES}")
    bad = sorted(set(stages) - set(STAGES))
    if bad:
        raise ValueError(f"unknown stages {bad}; allowed: {STAGES}")
    _check_depth(arch, schedule)
    rows: list[CostRow] = []
    if "vision" in stages:
        rows += vision_rows(arch, schedule)
    if "projector" in stages:
        rows += projector_rows(arch, schedule, norms)
    if "pooling" in stages:
        rows += pooling_rows(arch, schedule)
    llm = arch.llm
    if "prefill" in stages:
        for l, n in enumerate(schedule.llm_prefill):
            pairs = n * (n + 1) // 2 if causal else n * n
            rows += llm_layer_rows("prefill", l, llm, n, pairs, norms)
        if norms:
            rows.append(CostRow("prefill", -1, "final_norm", "rmsnorm", 4 * schedule.llm_prefill[-1] * llm.hidden))
    if "lm_head" in stages and lm_head != "none":
        n = 1 if lm_head == "last" else schedule.llm_prefill[-1]
        rows.append(CostRow("lm_head", -1, "lm_head", "linear", n * llm.hidden * llm.vocab))
    if "decode" in stages and schedule.decode_steps:
        rows += decode_rows(arch, schedule.kv_lengths, schedule.decode_steps, norms=norms,
                            lm_head=lm_head != "none")
    return CostTable(tuple(rows), "exact", schedule.label)


def llm_layer_rows(stage: str, layer: int, llm: LLMSpec, n: int, pairs: int, norms: bool) -> list[CostRow]:
    """One decoder layer: n query tokens attending over ``pairs`` query-key pairs in total."""
    d, m = llm.hidden, llm.intermediate
    rows = [
        CostRow(stage, layer, "q_proj", "linear", n * d * llm.q_dim),
        CostRow(stage, layer, "k_proj", "linear", n * d * llm.kv_dim),
        CostRow(stage, layer, "v_proj", "linear", n * d * llm.kv_dim),
        CostRow(stage, layer, "attn_qk", "attention", pairs * llm.q_dim),
        CostRow(stage, layer, "attn_av", "attention", pairs * llm.q_dim),
        CostRow(stage, layer, "o_proj", "linear", n * llm.q_dim * d),
        CostRow(stage, layer, "mlp_gate", "linear", n * d * m),
        CostRow(stage, layer, "mlp_up", "linear", n * d * m),
        CostRow(stage, layer, "mlp_down", "linear", n * m * d),
    ]
    if norms:
        rows += [CostRow(stage, layer, "input_norm", "rmsnorm", 4 * n * d),
                 CostRow(stage, layer, "post_attn_norm", "rmsnorm", 4 * n * d)]
        if llm.qk_norm:
            rows.append(CostRow(stage, layer, "qk_norm", "rmsnorm", 4 * n * (llm.q_dim + llm.kv_dim)))
    return rows


def decode_rows(arch: ArchSpec, kv_lengths: Sequence[int], steps: int, *, norms: bool = True,
                lm_head: bool = True) -> list[CostRow]:
    """``steps`` decode steps summed per layer; step i attends over kv_lengths[l] + i + 1 keys."""
    llm = arch.llm
    rows: list[CostRow] = []
    for l, kv in enumerate(kv_lengths):
        pairs = steps * kv + steps * (steps + 1) // 2
        rows += llm_layer_rows("decode", l, llm, steps, pairs, norms)
    if norms:
        rows.append(CostRow("decode", -1, "final_norm", "rmsnorm", 4 * steps * llm.hidden))
    if lm_head:
        rows.append(CostRow("decode", -1, "lm_head", "linear", steps * llm.hidden * llm.vocab))
    return rows


def decode_step_costs(arch: ArchSpec, kv_len: int | Sequence[int], *, norms: bool = True,
                      lm_head: bool = False) -> CostTable:
    """One decode step with ``kv_len`` cached tokens per layer (an int: the same in every layer)."""
    kv = [kv_len] * arch.llm.layers if isinstance(kv_len, int) else list(kv_len)
    return CostTable(tuple(decode_rows(arch, kv, 1, norms=norms, lm_head=lm_head)), "exact",
                     f"decode step kv={kv_len}")


def vision_rows(arch: ArchSpec, schedule: TokenSchedule) -> list[CostRow]:
    v = arch.vision
    if len(schedule.vision) != v.layers:
        raise ValueError(f"schedule has {len(schedule.vision)} vision layers, {arch.name} runs {v.layers}")
    if not schedule.vision:
        return []
    D, I = v.hidden, v.intermediate
    norm = v.norm
    patches = schedule.vision[0].total
    rows = [CostRow("vision", -1, "patch_embed", "conv" if v.patch_embed == "conv" else "linear",
                    patches * v.patch_in * D)]
    for l, load in enumerate(schedule.vision):
        t, s = load.tokens, load.sequences
        n = load.total
        rows += [CostRow("vision", l, "norm1", norm, (5 if norm == "layernorm" else 4) * n * D)]
        rows += [CostRow("vision", l, op, "linear", n * D * D) for op in ("q_proj", "k_proj", "v_proj")]
        rows += [CostRow("vision", l, "attn_qk", "attention", s * t * t * D),
                 CostRow("vision", l, "attn_av", "attention", s * t * t * D),
                 CostRow("vision", l, "o_proj", "linear", n * D * D),
                 CostRow("vision", l, "norm2", norm, (5 if norm == "layernorm" else 4) * n * D)]
        mats = ("fc1", "fc2") if v.mlp == "gelu2" else ("mlp_gate", "mlp_up", "mlp_down")
        rows += [CostRow("vision", l, op, "linear", n * D * I) for op in mats]
    if v.post_norm:
        rows.append(CostRow("vision", v.layers, "post_layernorm", norm,
                            (5 if norm == "layernorm" else 4) * schedule.vision[-1].total * D))
    return rows


def projector_rows(arch: ArchSpec, schedule: TokenSchedule, norms: bool = True) -> list[CostRow]:
    n = schedule.projector_tokens
    rows = []
    if arch.family == "qwen2_5_vl" and norms:  # merger's ln_q runs on the 4 patches of each token
        merge = arch.projector[0][0] // arch.vision.hidden
        rows.append(CostRow("projector", -1, "ln_q", "rmsnorm", 4 * n * merge * arch.vision.hidden))
    rows += [CostRow("projector", i, f"linear{i}", "linear", n * a * b)
             for i, (a, b) in enumerate(arch.projector)]
    return rows


def pooling_rows(arch: ArchSpec, schedule: TokenSchedule) -> list[CostRow]:
    F = schedule.frames
    ph, pw = arch.pooled_grid
    if arch.pooling == "bilinear":  # fvcore: 4 per output element of upsample_bilinear2d
        return [CostRow("pooling", -1, "bilinear", "interp", 4 * F * ph * pw * arch.llm.hidden)]
    if arch.pooling == "average":  # 2x2 window: 4 adds per output element
        return [CostRow("pooling", -1, "avg_pool2d", "pool", 4 * F * ph * pw * arch.llm.hidden)]
    if arch.pooling == "attention_3x3":
        pool_in, attn, group = arch.pooling_attention
        g = schedule.projector_tokens  # pooled tokens that survive (STTS drops pruned groups)
        return [CostRow("pooling", 0, "q_proj", "linear", g * pool_in * attn),
                CostRow("pooling", 0, "k_proj", "linear", g * group * pool_in * attn),
                CostRow("pooling", 0, "v_proj", "linear", g * group * pool_in * attn),
                CostRow("pooling", 0, "attn_qk", "attention", g * group * attn),
                CostRow("pooling", 0, "attn_av", "attention", g * group * attn),
                CostRow("pooling", 0, "o_proj", "linear", g * attn * arch.vision.hidden)]
    return []  # Qwen2.5-VL's 2x2 merge is a reshape


def _check_depth(arch: ArchSpec, schedule: TokenSchedule) -> None:
    if schedule.llm_layers != arch.llm.layers:
        raise ValueError(f"schedule has {schedule.llm_layers} LLM layers, {arch.name} has {arch.llm.layers}")
