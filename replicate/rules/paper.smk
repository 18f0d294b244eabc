# paper tier: benchmark accuracy of real checkpoints (replicate/paper, replicate/benchmarks).
#
#   one job per (checkpoint, frames, method + options, retention, benchmark, shard):
#       results/paper/cells/<protocol>/<ckpt>/f<frames>/<tag>/<benchmark>/shard-<i>-of-<n>.jsonl
#   -> per cell: summary.json (lmms-eval scoring) -> results/paper/cells.json (the evaluators' input)
#
# Only cells whose paths.checkpoints.<ckpt> and paths.datasets.<benchmark> are set enter the DAG;
# the claims of the others say not-run with the empty key. A set but unusable path ends that cell
# with status error naming the key and the file (the other cells go on). Shards declare
# resources gpu / mem_mb / runtime so profiles/gpu and profiles/slurm spread them; the vanilla cell
# of a (checkpoint, frames, benchmark) is shared by every method's comparisons.
from replicate.paper import cells as _PC
from replicate.paper import shard as _PS

PAPER = config["paper"]
PAPER_SHARDS = int(PAPER["shards"])
PAPER_CELLS = _PC.required_cells(CLAIMS, config)
PAPER_CELL_BY_DIR = {c.dir: c for c in PAPER_CELLS}
_pcell = lambda wc: _PC.cell_at(PAPER_CELL_BY_DIR, wc.pproto, wc.pckpt, wc.pframes, wc.ptag, wc.pbench)  # noqa: E731
PAPER_SUMMARIES = [c.summary_path for c in PAPER_CELLS]
#: what a shard's result depends on besides its cell: a change reruns the shard, nothing else does
PAPER_RUN_KEYS = ("answer", "max_new_tokens", "limit", "device", "dtype", "rehearsal", "device_map", "offload_dir")


wildcard_constraints:
    pproto="[a-z0-9][a-z0-9.-]*",
    pckpt="[A-Za-z0-9._-]+",
    pframes="[0-9]+",
    ptag="[A-Za-z0-9._-]+",
    pbench="[A-Za-z0-9._-]+",
    pshard="[0-9]{3}",
    pn="[0-9]{3}",


localrules:
    paper_cell_summary,
    paper_index,


rule paper_shard:
    """One shard of one cell: per-sample predictions (JSONL), tqdm in the log."""
    output:
        "results/paper/cells/{pproto}/{pckpt}/f{pframes}/{ptag}/{pbench}/shard-{pshard}-of-{pn}.jsonl",
    params:
        cell=lambda wc: _pcell(wc).as_dict(),
        paths=lambda wc: _PC.cell_paths(_pcell(wc), config),
        run={k: PAPER.get(k) for k in PAPER_RUN_KEYS},
        seeds=config["seeds"],
    log:
        "logs/paper/{pproto}/{pckpt}/f{pframes}/{ptag}/{pbench}/shard-{pshard}-of-{pn}.log",
    threads: PAPER["threads"]
    conda:
        CONDA_ENV
    resources:
        gpu=lambda wc: _PC.gpus_for(_pcell(wc), config),  # the 72B: several GPUs (device map)
        mem_mb=PAPER["mem_mb"],
        runtime=PAPER["runtime"],
    script:
        "../scripts/paper_shard.py"


rule paper_cell_summary:
    """Merge a cell's shards and score them as lmms-eval does."""
    input:
        lambda wc: [_pcell(wc).shard_path(i, PAPER_SHARDS) for i in range(PAPER_SHARDS)],
    output:
        "results/paper/cells/{pproto}/{pckpt}/f{pframes}/{ptag}/{pbench}/summary.json",
    params:
        cell=lambda wc: _pcell(wc).as_dict(),
    log:
        "logs/paper/{pproto}/{pckpt}/f{pframes}/{ptag}/{pbench}/summary.log",
    resources:
        mem_mb=500,
        runtime=2,
    run:  # in the Snakemake process: no interpreter start per cell
        _PS.summary_job(params.cell, list(input), output[0], log[0])


rule paper_index:
    """Every cell summary this machine could build (empty where no paper path is set)."""
    input:
        PAPER_SUMMARIES,
    output:
        _PC.CELLS_INDEX,
    params:
        rehearsal=PAPER["rehearsal"],
    log:
        "logs/paper/index.log",
    resources:
        mem_mb=500,
        runtime=2,
    run:
        _PS.index_job(list(input), output[0], log[0], params.rehearsal)


TIER_RESULTS["paper"] += [_PC.CELLS_INDEX]
TIER_RESULTS["paper"] += PAPER_SUMMARIES  # the evaluators read each cell's summary: a missing one is rebuilt
