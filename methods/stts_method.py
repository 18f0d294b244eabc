"""The registered "stts" Method (and its ablation rules): STTS's in-ViT pruning (docs/sources.md#stts).

On STTS's own backbone, Molmo2 (``methods.adapters.molmo2``), the groups are the connector's 3 x 3
pooling windows and the adapter's ``encode_video_pruned`` runs its ViT with the pruning. On
LLaVA-OV the mechanism is transplanted into the HF SigLIP tower: scorer after block ``prune_at``,
soft key bias in block ``prune_at+1``, hard prune + first-fit-decreasing packing after it,
connector on the unpacked layout, only surviving pooled tokens reach the LLM; groups are the 2 x 2
cells of LLaVA-OV's pooling stride (one group per pooled token; see
``methods.adapters.vision_prune`` for the bilinear mapping). Both run the blocks in
``vision_prune.run_blocks``.

Stages: ``in_vit`` (the adapter's ``encode_video`` delegates the tower forward to
``encode_in_vit``) and a pre-LLM ``reduce`` that keeps the surviving pooled tokens in original order.
``stts_losses`` exposes the two training signals (auxiliary novelty MSE and the differentiable bias
path) for training the scorer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Optional

import torch

from methods.adapters.vision_prune import (PrunedVideoTokens, check_pooling_groups, encode_video_pruned,
                                           pool_kept, run_tower, tower_layers_run)
from costmodel.nominal import check_layer, packed_vision, round_half_up
from methods.base import Method, NominalTokens
from methods.paper_options import STTS_PRUNE_AT
from methods.setting import PaperSetting, SettingOptions
from methods.stts import (STTSConfig, TemporalTokenScorer, auxiliary_loss, check_prune_method,
                          novelty_targets)
from methods.types import Reduction, TowerHost, VideoTokens

__all__ = ["STTSMethodConfig", "STTS", "STTSRandom", "STTSHeuristic", "STTSEasy", "stts_losses"]


@dataclass(frozen=True)
class STTSMethodConfig:
    """STTSConfig's fields for LLaVA-OV, plus the scorer checkpoint.

    ``topk`` is the pruned fraction of groups (0 = no pruning: the plain tower runs, no scorer).
    ``group`` None = the adapter's pooling cell: 2 on LLaVA-OV (its 2x2 stride), 3 on Molmo2 (the
    connector's 3x3 windows, as STTS); an explicit value must match the adapter.
    ``prune_method``: ``scorer`` (the learned scorer, bias, packing after prune_at+1) or one of
    STTS's non-learned ablation rules ``random`` / ``heuristic`` / ``easy`` (selection on the ViT
    input embeddings, packing after block prune_at, no bias; ``seed`` seeds ``random``).
    ``scorer_heads`` / ``mlp_dim`` None = the tower's heads / MLP width (16 / 4304 for so400m, as
    STTS). ``scorer_checkpoint``: a ``torch.save``d state_dict of ``TemporalTokenScorer``; None =
    random init from ``seed`` (fine for timing, meaningless for accuracy).
    """

    topk: float = 0.5
    prune_at: int = STTS_PRUNE_AT
    group: Optional[int] = None
    scorer_heads: Optional[int] = None
    mlp_dim: Optional[int] = None
    rescale_min: float = math.exp(-2.0)
    aux_coef: float = 0.5
    scorer_checkpoint: Optional[str] = None
    seed: int = 0
    prune_method: str = "scorer"

    def __post_init__(self) -> None:
        check_prune_method(self.prune_method)
        for name in ("scorer_heads", "mlp_dim"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"{name} must be None (from the tower) or an int >= 1, got {v!r}")
        if isinstance(self.prune_at, bool) or not isinstance(self.prune_at, int):
            raise ValueError(f"prune_at must be an int block index, got {self.prune_at!r}")
        if self.aux_coef < 0:
            raise ValueError(f"aux_coef must be >= 0, got {self.aux_coef!r}")
        if self.scorer_checkpoint is not None and not isinstance(self.scorer_checkpoint, (str, Path)):
            raise ValueError(f"scorer_checkpoint must be a path or None, got {self.scorer_checkpoint!r}")
        self.stts_config(heads=1, mlp_dim=1)  # validates topk, prune_at, rescale_min, group

    def stts_config(self, vision_config=None, heads: Optional[int] = None,
                    mlp_dim: Optional[int] = None, group: Optional[int] = None) -> STTSConfig:
        """The pure-algorithm STTSConfig, scorer dims filled from ``vision_config`` when None."""
        if heads is None:
            heads = self.scorer_heads or int(vision_config.num_attention_heads)
        if mlp_dim is None:
            mlp_dim = self.mlp_dim or int(vision_config.intermediate_size)
        return STTSConfig(prune_at=self.prune_at, topk=float(self.topk), scorer_heads=heads, mlp_dim=mlp_dim,
                          rescale_min=float(self.rescale_min), aux_coef=float(self.aux_coef),
                          group=group or self.group or 2)

    def group_for(self, adapter) -> int:
        """The group side on ``adapter``: its pooling cell (3 on Molmo2, 2 on LLaVA-OV)."""
        native = int(getattr(adapter, "pooling", (2, 2))[0])
        if self.group is not None and self.group != native:
            raise ValueError(f"stts group={self.group} does not match the adapter's pooling cell {native}: they must coincide "
                             f"(one STTS group per pooled token)")
        return native


class STTS(Method):
    name = "stts"
    description = ("STTS in the ViT (Molmo2: its 3x3 connector windows as groups, as the paper; LLaVA-OV: "
                   "2x2 groups of its SigLIP tower): learned spatio-temporal group scorer after ViT block prune_at, soft attention bias in block prune_at+1, hard prune of the video-global "
                   "topk fraction of groups (first frame kept) with first-fit-decreasing packing of later "
                   "blocks; only kept pooled tokens reach the LLM. Accuracy requires a trained scorer "
                   "(scorer_checkpoint); the default random-init scorer is for timing and cost only.")
    Config = STTSMethodConfig
    stages: ClassVar[tuple[str, ...]] = ("in_vit", "pre_llm")
    families = ("llava-onevision", "llava-video", "molmo2")  # a SigLIP tower it can prune inside
    needs = TowerHost
    retention_kind = "optional"  # the papers state STTS's pruned fraction, topk, instead
    schedule_options = ("topk", "prune_at")

    @classmethod
    def from_setting(cls, setting: PaperSetting) -> SettingOptions:
        """``topk`` (the pruned fraction of groups) = 1 - retention, rounded to 6 decimals so a
        retention and the topk a claim states name one cell (or ``topk`` as given, the papers'
        notation); pruning after block 3, or block 0 on a tower of <= 2 blocks (block prune_at + 1
        must exist for the soft-bias block)."""
        paper = {"prune_at": STTS_PRUNE_AT, **setting.options}
        r = setting.kept_fraction(cls.name, cls.retention_kind)
        notes = []
        if r is not None:
            setting.set_kept(cls.name, paper, "topk", round(1.0 - r, 6))
            notes.append("stts: topk (pruned fraction) = 1 - retention; scorer untrained unless scorer_checkpoint "
                         "is given (label: stts-untrained-scorer)")
        out = setting.derive(cls, paper, notes=notes)
        if setting.vision_layers is not None and setting.vision_layers <= 2:
            out.applied["prune_at"] = 0
            out.scaled["prune_at"] = [paper.get("prune_at", STTS_PRUNE_AT), 0]
            out.notes.append(f"stts: prune_at 0 on a {setting.vision_layers}-layer tower (prune_at + 1 must be a "
                             f"tower block)")
        return out

    @classmethod
    def label(cls, applied) -> str:
        """STTS without a trained scorer is labelled as such (its accuracy is not STTS's)."""
        if cls is STTS and not applied.get("scorer_checkpoint"):
            return "stts-untrained-scorer"
        return cls.name

    def __init__(self, config=None, **options):
        super().__init__(config, **options)
        self._scorer: Optional[TemporalTokenScorer] = None

    # ---- scorer ---------------------------------------------------------------------------
    def scorer(self, adapter) -> TemporalTokenScorer:
        """The scorer for this adapter's tower (built once: checkpoint, else random init from seed)."""
        vc = adapter.vision_config
        dim = int(vc.hidden_size)
        if self._scorer is None or self._scorer.dim != dim:
            cfg = self.config.stts_config(vc, group=self.config.group_for(adapter))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.config.seed)
                scorer = TemporalTokenScorer.from_config(dim, cfg)
            if self.config.scorer_checkpoint is not None:
                path = Path(self.config.scorer_checkpoint)
                if not path.is_file():
                    raise ValueError(f"stts scorer_checkpoint {str(path)!r} does not exist")
                scorer.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            self._scorer = scorer.eval()
        return self._scorer.to(device=adapter.device, dtype=adapter.dtype)

    def set_scorer(self, scorer: TemporalTokenScorer) -> None:
        """Use a trained scorer module (e.g. straight from ``stts_losses`` training)."""
        if not isinstance(scorer, TemporalTokenScorer):
            raise ValueError(f"scorer must be a TemporalTokenScorer, got {type(scorer).__name__}")
        self._scorer = scorer

    # ---- stages ---------------------------------------------------------------------------
    def encode_in_vit(self, adapter, pixel_values: torch.Tensor, timestamps=None) -> PrunedVideoTokens:
        """Adapter hook: the pruned tower forward for one video (F, 3, S, S)."""
        c = self.config
        group = c.group_for(adapter)
        learned = c.prune_method == "scorer"
        if hasattr(adapter, "encode_video_pruned"):  # adapters with their own ViT input and connector (Molmo2)
            return adapter.encode_video_pruned(
                pixel_values, prune_at=c.prune_at, topk=float(c.topk), rule=c.prune_method,
                scorer=self.scorer(adapter) if learned and c.topk > 0 else None,
                rescale_min=float(c.rescale_min), seed=c.seed, timestamps=timestamps)
        if c.topk == 0:  # nothing pruned: the plain tower, no scorer and no bias
            return encode_video_pruned(adapter, pixel_values, prune_at=None, scorer=None, topk=0.0,
                                       group=group, timestamps=timestamps)
        if not learned:  # STTS's rules select on the tower input and pack after block prune_at
            return encode_video_pruned(adapter, pixel_values, prune_at=c.prune_at, scorer=None, topk=float(c.topk),
                                       group=group, timestamps=timestamps, rule=c.prune_method, seed=c.seed)
        return encode_video_pruned(adapter, pixel_values, prune_at=c.prune_at, scorer=self.scorer(adapter),
                                   topk=float(c.topk), group=group, rescale_min=float(c.rescale_min),
                                   timestamps=timestamps)

    def reduce(self, tokens: VideoTokens) -> Reduction:
        """Surviving pooled tokens in original order (flat source index, contiguous positions)."""
        if not isinstance(tokens, PrunedVideoTokens):
            raise ValueError("stts needs the tokens of its in-ViT stage: attach the method to the adapter "
                             "before encode_video (got plain VideoTokens)")
        flat = torch.nonzero(tokens.keep.flatten(), as_tuple=False).squeeze(1)
        feats = tokens.features.reshape(-1, tokens.features.shape[-1])[flat]
        return Reduction(feats, flat, positions="contiguous", info=dict(tokens.info))

    def nominal_label(self, arch, frames):
        return f"{arch.name}/{self.name}/F={frames}"

    def nominal_tokens(self, arch, frames, budget="global"):
        """ViT load and LLM tokens (docs/sources.md#stts): groups of g patches per pooled token; topk of
        the groups pruned (the first frame kept) after block prune_at, the later blocks on
        ceil(kept patches / patches per frame) packed bins."""
        topk = float(self.config.topk)
        if not 0 <= topk < 1:
            raise ValueError(f"stts topk (pruned fraction) must be in [0, 1), got {topk!r}")
        prune_at = check_layer(self.config.prune_at, arch.vision.layers - 1, "prune_at")
        n, per_frame = arch.vision.patches_per_frame, arch.tokens_per_frame
        group = n // per_frame
        pruned = min(round_half_up(per_frame * topk * frames), per_frame * (frames - 1))  # first frame kept
        vision = packed_vision(arch, frames, n * frames - group * pruned, prune_at + 1)
        kept = per_frame * frames - pruned
        return NominalTokens((kept,) * arch.llm.layers, kept, vision,
                             ("STTS ViT bins: first-fit-decreasing lower bound ceil(kept/729); refill of "
                              "single-frame bins is not modelled",))


def stts_losses(adapter, pixel_values: torch.Tensor, config: Optional[STTSMethodConfig] = None, *,
                scorer: Optional[TemporalTokenScorer] = None, apply_bias: bool = True) -> dict:
    """The STTS training signals for one video, with gradients (no ``torch.no_grad`` anywhere).

    Returns ``aux_loss`` (MSE of scores to 1 - cos novelty of the block-``prune_at`` groups, frames
    t >= 1; multiply by ``config.aux_coef`` = 0.5 for the STTS objective), ``scores`` (F, G),
    ``features`` (F, Np, D) pooled features, ``keep`` (F, Np) bool, ``kept_features`` (M, D) and
    ``source`` (M,) of the surviving pooled tokens in original order (what the LLM receives: an LM
    loss on them reaches the scorer through the block prune_at+1 bias), ``targets`` and
    ``vision_load``. ``scorer`` defaults to the method's (random init or checkpoint).
    """
    c = config if config is not None else STTSMethodConfig()
    if not isinstance(c, STTSMethodConfig):
        raise ValueError(f"config must be an STTSMethodConfig, got {type(c).__name__}")
    if c.topk == 0:
        raise ValueError("stts_losses needs topk > 0 (topk=0 runs no scorer)")
    if scorer is None:
        scorer = STTS(c).scorer(adapter)
    if pixel_values.dim() == 5:
        if pixel_values.shape[0] != 1:
            raise ValueError(f"batch size 1 only: got a batch of {pixel_values.shape[0]} videos")
        pixel_values = pixel_values[0]
    group = c.group_for(adapter)
    check_pooling_groups(adapter, group)
    tower = adapter.model.model.vision_tower
    run = run_tower(tower, pixel_values.to(device=adapter.device, dtype=adapter.dtype), tower_layers_run(adapter),
                    prune_at=c.prune_at, scorer=scorer, topk=float(c.topk), group=group,
                    rescale_min=float(c.rescale_min), apply_bias=apply_bias, keep_prune_hidden=True)
    F_, N, D = run.prune_hidden.shape
    h, w = adapter.tower_grid
    targets = novelty_targets(run.prune_hidden.reshape(F_, h, w, D), group)
    aux = auxiliary_loss(run.scores, targets)
    features = pool_kept(adapter, run.hidden, run.patch_keep)
    keep = run.group_keep
    flat = torch.nonzero(keep.flatten(), as_tuple=False).squeeze(1)
    return {"aux_loss": aux, "scores": run.scores, "targets": targets, "features": features, "keep": keep,
            "kept_features": features.reshape(-1, features.shape[-1])[flat], "source": flat,
            "vision_load": run.vision_load, "bias": run.bias}


def _check_rule(config: STTSMethodConfig, rule: str) -> None:
    if config.prune_method != rule:
        raise ValueError(f"stts-{rule} fixes prune_method={rule!r}, got {config.prune_method!r} "
                         f"(use method 'stts' to choose the rule)")


@dataclass(frozen=True)
class STTSRandomConfig(STTSMethodConfig):
    """STTS's non-learned 'random' rule (docs/sources.md#stts-ablation-rules); options as stts."""

    prune_method: str = "random"

    def __post_init__(self) -> None:
        _check_rule(self, "random")
        super().__post_init__()


@dataclass(frozen=True)
class STTSHeuristicConfig(STTSMethodConfig):
    """STTS's non-learned 'heuristic' rule (docs/sources.md#stts-ablation-rules); options as stts."""

    prune_method: str = "heuristic"

    def __post_init__(self) -> None:
        _check_rule(self, "heuristic")
        super().__post_init__()


@dataclass(frozen=True)
class STTSEasyConfig(STTSMethodConfig):
    """STTS's non-learned 'easy' rule (docs/sources.md#stts-ablation-rules); options as stts."""

    prune_method: str = "easy"

    def __post_init__(self) -> None:
        _check_rule(self, "easy")
        super().__post_init__()


_RULE_METHOD = ("STTS ablation rule '{rule}' in the ViT: {text}; video-global topk of groups pruned on the tower "
                "input, packing after block prune_at, no scorer and no bias")


class STTSRandom(STTS):
    name = "stts-random"
    Config = STTSRandomConfig
    description = _RULE_METHOD.format(rule="random", text="uniform random 3x3 (Molmo2) / 2x2 (LLaVA-OV) "
                                                          "groups, seeded")
    # The nominal STTS schedule packs after prune_at+1; these rules pack one block earlier.
    nominal_tokens = Method.nominal_tokens


class STTSHeuristic(STTS):
    name = "stts-heuristic"
    Config = STTSHeuristicConfig
    description = _RULE_METHOD.format(rule="heuristic", text="per-location reference frames, prune the groups "
                                      "most similar to their reference (theta 0.85, -0.05 per retry, 5 tries)")
    nominal_tokens = Method.nominal_tokens


class STTSEasy(STTS):
    name = "stts-easy"
    Config = STTSEasyConfig
    description = _RULE_METHOD.format(rule="easy", text="prune the groups most similar to the previous frame")
    nominal_tokens = Method.nominal_tokens
