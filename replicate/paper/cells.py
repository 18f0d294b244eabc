"""Accuracy cells of the paper tier: which ones the claims need, and where their files live.

A cell is one (checkpoint, frames, method + options, retention, benchmark); it is computed in
``paper.shards`` shards (one Snakemake job each) and summarised once. The vanilla cell of a
(checkpoint, frames, benchmark) is shared by every method's perf-kept, gain and drop.

Files (paths relative to the workflow's working directory)::

    results/paper/cells/<checkpoint>/f<frames>/<method tag>/<benchmark>/shard-<i>-of-<n>.jsonl
    results/paper/cells/<checkpoint>/f<frames>/<method tag>/<benchmark>/summary.json
    results/paper/cells.json      index of every cell this machine could build (evaluator input)

``<benchmark>`` is the loader name, or ``<suite>.<loader>`` for a member of a benchmark suite such
as ``stts-13tasks`` (``paths.datasets.stts-13tasks/<loader>/`` in that loader's layout).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional

from methods import registry
from replicate.benchmarks.base import BENCHMARKS
from replicate.harness.options import rtag

CELLS_ROOT = "results/paper/cells"
CELLS_INDEX = "results/paper/cells.json"
PAPER_EVALUATORS = ("lmms_eval_accuracy", "lmms_eval_perf_kept", "lmms_eval_accuracy_gain",
                    "lmms_eval_accuracy_drop", "lmms_eval_runtime", "lmms_eval_best_k", "lmms_eval_layer_avg_ratio")
#: evaluators that read the vanilla cells whatever baseline the claim names (a ratio to vanilla)
VANILLA_EVALUATORS = ("lmms_eval_perf_kept", "lmms_eval_layer_avg_ratio")
#: STTS's 13 tasks are not listed in what was read (docs/sources.md#tango-stts-results): the suite is the benchmarks
#: with a loader here that Molmo2's evaluation includes (config paper.suites overrides it)
DEFAULT_SUITES = {"stts-13tasks": ["mvbench", "egoschema", "longvideobench", "videomme", "mlvu"]}
#: HoliTom's K sweep (docs/sources.md#claim-h6), used by lmms_eval_best_k
DEFAULT_BEST_K = [2, 7, 14, 18, 21]


@dataclass(frozen=True)
class Cell:
    checkpoint: str                 # name under paths.checkpoints
    model: str                      # architecture name (costmodel/archs): paper layer count, frames
    frames: int
    method: str
    retention: Optional[float]
    options: tuple                  # ((Method option, value), ...) sorted, paper-level values
    dataset: str                    # name under paths.datasets
    benchmark: str                  # loader name (replicate.benchmarks)

    @property
    def tag(self) -> str:
        """Method tag of the path: ``vanilla``, ``holitom_r0.10_inner_k18_inner_r0.5_tau0.65``."""
        if not registry.takes_retention(self.method) and not self.options:
            return self.method
        parts = [self.method, rtag(self.retention)] + [f"{k}{_fmt(v)}" for k, v in self.options]
        return "_".join(parts)

    @property
    def bench_tag(self) -> str:
        return self.benchmark if self.dataset == self.benchmark else f"{self.dataset}.{self.benchmark}"

    @property
    def dir(self) -> str:
        return f"{CELLS_ROOT}/{self.checkpoint}/f{self.frames}/{self.tag}/{self.bench_tag}"

    def shard_path(self, i: int, n: int) -> str:
        return f"{self.dir}/shard-{i:03d}-of-{n:03d}.jsonl"

    @property
    def summary_path(self) -> str:
        return f"{self.dir}/summary.json"

    @property
    def method_options(self) -> dict[str, Any]:
        return dict(self.options)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Cell":
        opts = tuple(sorted((k, _freeze(v)) for k, v in (d.get("options") or {}).items()))
        ret = d.get("retention")
        return cls(d["checkpoint"], d["model"], int(d["frames"]), d["method"],
                   None if ret is None else float(ret), opts, d["dataset"], d["benchmark"])

    def as_dict(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "model": self.model, "frames": self.frames, "method": self.method,
                "retention": self.retention, "options": self.method_options, "dataset": self.dataset,
                "benchmark": self.benchmark, "tag": self.tag, "summary": self.summary_path}


def _fmt(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "-".join(_fmt(x) for x in v)
    return str(v)


def _freeze(v: Any) -> Any:
    return tuple(_freeze(x) for x in v) if isinstance(v, (list, tuple)) else v


def suites(config: Mapping[str, Any]) -> dict[str, list[str]]:
    return {**DEFAULT_SUITES, **(config.get("paper", {}).get("suites") or {})}


def benchmark_members(dataset: str, config: Mapping[str, Any]) -> list[str]:
    """Loader names behind a dataset key: itself, or a suite's members. Raises for no loader."""
    if dataset in BENCHMARKS:
        return [dataset]
    found = suites(config)
    if dataset in found:
        return list(found[dataset])
    raise ValueError(f"no loader for benchmark {dataset!r} (replicate/benchmarks has: {', '.join(BENCHMARKS)}; "
                     f"suites: {', '.join(sorted(found))})")


def method_options_of(setting: Mapping[str, Any], method: str) -> tuple:
    """Paper-level Method options a claim setting states for ``method``: the papers' symbols the
    method's notation names (``Method.notation``), then its ``options`` (sorted, hashable)."""
    notation = registry.notation(method)
    opts = {notation[k]: setting[k] for k in notation if k in setting}
    opts.update(setting.get("options") or {})
    return tuple(sorted((k, _freeze(v)) for k, v in opts.items()))


def _cells(setting: Mapping[str, Any], config, *, method: str, checkpoint: str, options: tuple,
           retention: Optional[float], frames: Optional[int] = None) -> list[Cell]:
    frames = int(frames or setting.get("frames") or 32)
    out = []
    for dataset in setting.get("benchmarks", []):
        for bench in benchmark_members(dataset, config):
            out.append(Cell(checkpoint, setting["model"], frames, method,
                            retention if registry.takes_retention(method) else None, options, dataset, bench))
    return out


def setting_retention(setting: Mapping[str, Any]) -> Optional[float]:
    """The claim's retention; STTS settings state the pruned fraction instead (retention = 1 - topk)."""
    if setting.get("retention") is not None:
        return float(setting["retention"])
    topk = (setting.get("options") or {}).get("topk")
    return None if topk is None else round(1.0 - float(topk), 6)


def method_cells(claim: Mapping[str, Any], config: Mapping[str, Any]) -> list[Cell]:
    s = claim["setting"]
    retention = setting_retention(s)
    if retention is None and registry.method_info(s["method"])["retention_kind"] == "required":
        # only HoliTom's frames sweep states no retention (docs/sources.md#holitom-figures); the config's assumption
        # (holitom.frames_retention, 0.20: see its comment) is used and is part of the cell's tag
        retention = config.get("holitom", {}).get("frames_retention")
    return _cells(s, config, method=s["method"], checkpoint=s.get("checkpoint") or s["model"],
                  options=method_options_of(s, s["method"]), retention=retention)


def baseline_frames(setting: Mapping[str, Any]) -> Optional[int]:
    """Frames of the comparison cells: the setting's ``baseline_frames`` where the baseline sees fewer
    frames than the method (STTS's test-time scaling: vanilla at 64 vs STTS at 128, same LLM token
    budget), else the method's own frame count (None: ``_cells``' default)."""
    bf = setting.get("baseline_frames")
    if bf is None:
        return None
    if isinstance(bf, bool) or not isinstance(bf, int) or bf < 1:
        raise ValueError(f"claim setting baseline_frames must be a positive int, got {bf!r}")
    return bf


def baseline_cells(claim: Mapping[str, Any], config: Mapping[str, Any], baseline: str = "vanilla") -> list[Cell]:
    """The comparison cells: vanilla runs on the model's own checkpoint (``paths.checkpoints.<model>``);
    a pruning baseline (random, ...) on the setting's ``baseline_checkpoint`` when it names one (a
    baseline with weights of its own, e.g. ToMe), else on the method's checkpoint, at the same options.
    Both at ``baseline_frames(setting)``, so a vanilla cell is the one other claims at those frames share."""
    s = claim["setting"]
    frames = baseline_frames(s)
    if not registry.takes_retention(baseline):
        return _cells(s, config, method=baseline, checkpoint=s["model"], options=(), retention=None, frames=frames)
    checkpoint = s.get("baseline_checkpoint") or s.get("checkpoint") or s["model"]
    notation = registry.notation(baseline)
    return _cells(s, config, method=baseline, checkpoint=checkpoint,
                  options=tuple(sorted((notation[k], s[k]) for k in notation if k in s)),
                  retention=setting_retention(s), frames=frames)


def best_k_cells(claim, config) -> dict[int, list[Cell]]:
    s = dict(claim["setting"])
    out = {}
    for k in config.get("paper", {}).get("best_k", DEFAULT_BEST_K):
        s["k"] = int(k)
        out[int(k)] = method_cells({**claim, "setting": s}, config)
    return out


def claim_cells(claim: Mapping[str, Any], config: Mapping[str, Any]) -> list[Cell]:
    """Every cell the claim's evaluator reads (empty for a non-paper or unknown evaluator)."""
    name = claim.get("evaluator")
    if name not in PAPER_EVALUATORS:
        return []
    try:
        if name == "lmms_eval_best_k":
            return [c for cells in best_k_cells(claim, config).values() for c in cells]
        cells = method_cells(claim, config)
        if name in VANILLA_EVALUATORS:
            return cells + baseline_cells(claim, config, "vanilla")
        if name in ("lmms_eval_accuracy_drop", "lmms_eval_accuracy_gain"):
            base = claim["setting"].get("baseline", "vanilla")
            if _runnable_method(base):
                cells += baseline_cells(claim, config, base)
        return cells
    except ValueError:  # no loader for a benchmark: the evaluator says so
        return []


def _runnable_method(name: str) -> bool:
    return name in registry.list_methods()


def selected_claims(claims: Iterable[Mapping[str, Any]], config: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Paper-tier claims whose cells this run builds (config ``paper.claims``: ``all`` or ids)."""
    chosen = config.get("paper", {}).get("claims", "all")
    picked = [c for c in claims if c.get("tier") == "paper" and c.get("evaluator") in PAPER_EVALUATORS]
    if chosen == "all":
        return picked
    known = {c["id"] for c in picked}
    bad = sorted(set(chosen) - known)
    if bad:
        raise ValueError(f"config key paper.claims names unknown paper-tier claim(s) {bad[:5]}")
    return [c for c in picked if c["id"] in set(chosen)]


def path_configured(config: Mapping[str, Any], section: str, name: str) -> bool:
    return bool(str(config.get("paths", {}).get(section, {}).get(name, "") or "").strip())


def buildable(cell: Cell, config: Mapping[str, Any]) -> bool:
    """Whether both config paths of the cell are set (a set but broken path fails in the cell job,
    which records the error naming the key and the file)."""
    return path_configured(config, "checkpoints", cell.checkpoint) and path_configured(config, "datasets", cell.dataset)


def required_cells(claims: Iterable[Mapping[str, Any]], config: Mapping[str, Any]) -> list[Cell]:
    """Sorted unique cells of the selected claims whose paths are configured."""
    cells = {c for claim in selected_claims(claims, config) for c in claim_cells(claim, config)}
    return sorted((c for c in cells if buildable(c, config)), key=lambda c: c.dir)


def cell_at(cells_by_dir: Mapping[str, Cell], checkpoint: str, frames: str, tag: str, bench: str) -> Cell:
    """The cell behind a path's wildcards (rule paper_shard / paper_cell_summary)."""
    key = f"{CELLS_ROOT}/{checkpoint}/f{frames}/{tag}/{bench}"
    if key not in cells_by_dir:
        raise ValueError(f"{key} is not a cell of the selected paper claims with configured paths")
    return cells_by_dir[key]


def cell_paths(cell: Cell, config: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The config paths one cell reads (a shard's params: editing another path reruns nothing)."""
    from .checkpoints import MAP_HEAD_METHODS, SIGLIP_KEY

    ckpts = config.get("paths", {}).get("checkpoints", {})
    out = {"checkpoints": {cell.checkpoint: ckpts.get(cell.checkpoint, "")},
           "datasets": {cell.dataset: config.get("paths", {}).get("datasets", {}).get(cell.dataset, "")}}
    if cell.method in MAP_HEAD_METHODS:
        out["checkpoints"][SIGLIP_KEY] = ckpts.get(SIGLIP_KEY, "")
    return out
