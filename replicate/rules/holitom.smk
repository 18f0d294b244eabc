# HoliTom end to end: sweeps on the analytic and cpu tiers, Stages I-II benchmark, regenerated
# tables and figures (docs/sources.md#holitom-main-table, #holitom-backbones-table, #holitom-figures), the thin notebook. Config: `holitom:` (replicate/config.yaml).
#
#   analytic: results/holitom/analytic/sweeps.csv (retention / K / R / frames sweeps, LLaVA-OV-7B FLOPs)
#   cpu:      results/holitom/cpu/holitom/k{K}-R{R}-{merge}/{rtag}.json (Stage III variants; the cpu
#             grid's own cells are reused, see replicate.holitom_tables.cpu_cells) -> results/holitom/cpu/sweeps.csv
#   bench:    results/bench/holitom_stages.json
#   tables:   results/tables/holitom_{main,backbones}.{md,tex,csv}; figures: results/figures/holitom_*.{png,pdf}
#
# CPU, CPU_MODEL_FILES and the cpu_rtag constraint come from common.smk (included first).
from replicate import holitom_tables as HOLI

HOLI_CFG = HOLI.settings(config)
HOLI_CPU = TIERS.summary(config)["cpu"]["runnable"]
HOLI_CELLS = HOLI.cpu_cells(HOLI_CFG, CPU) if HOLI_CPU else []
HOLI_CELL_FILES = sorted({c.path for c in HOLI_CELLS})
HOLI_CPU_SWEEPS = ["results/holitom/cpu/sweeps.csv", "results/holitom/cpu/frames_sweep.json"] if HOLI_CPU else []
HOLI_CPU_EFF = ["results/cpu/efficiency.csv"] if HOLI_CPU else []
HOLI_CPU_ACC = ["results/cpu/accuracy.csv"] if HOLI_CPU else []
HOLI_TABLES = [f"results/tables/holitom_{t}.{ext}" for t in ("main", "backbones") for ext in ("md", "tex", "csv")]
HOLI_FIGURES = [f"results/figures/holitom_{n}.{ext}" for n in ("ttft", "decode", "ksweep", "frames")
                for ext in ("png", "pdf")]
HOLI_NOTEBOOK = ["results/figures/notebook/holitom/holitom_main.md", "results/figures/notebook/holitom/holitom_ksweep.png"]


wildcard_constraints:
    hk="[0-9]+",
    hr="[0-9]\\.[0-9]+",
    hmerge="running-pairwise|mean",


rule holitom_analytic:
    """FLOPs of every HoliTom sweep setting (costmodel nominal schedules; tau recorded per row)."""
    output:
        csv="results/holitom/analytic/sweeps.csv",
    params:
        rounding=config["analytic"]["budget_rounding"],
        holitom=HOLI_CFG,
    log:
        "logs/holitom/analytic.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=3,
    script:
        "../scripts/holitom_analytic.py"


rule holitom_cpu_cell:
    """HoliTom with Stage III options (paper K scaled to the tiny depth, R, merge rule) on SynthVideoQA."""
    input:
        **CPU_MODEL_FILES,
    output:
        "results/holitom/cpu/holitom/k{hk}-R{hr}-{hmerge}/{cpu_rtag}.json",
    params:
        model_dir=lambda wc, input: os.path.dirname(input.metrics),
        n_samples=CPU["n_samples"],
        seed=CPU["seed"],
        split=CPU["split"],
        method="holitom",
        options=lambda wc: {**CPU["options"].get("holitom", {}), "inner_k": int(wc.hk), "inner_r": float(wc.hr),
                            "merge": wc.hmerge},
        record=lambda wc: {"holitom_sweep": {
            "paper_k": int(wc.hk), "inner_r": float(wc.hr), "merge": wc.hmerge,
            "note": "paper K (28 layers) scaled to the tiny LLM: options.scaled.inner_k = [paper, applied]"}},
    log:
        "logs/holitom/cpu/k{hk}-R{hr}-{hmerge}/{cpu_rtag}.log",
    threads: CPU["threads"]
    conda:
        CONDA_ENV
    resources:
        mem_mb=1500,
        runtime=15,
    script:
        "../scripts/cpu_accuracy_cell.py"


rule holitom_wo_m_cpu_cell:
    """HoliTom (w/o M) at a retention outside the cpu grid (same settings as rule cpu_accuracy_cell)."""
    input:
        **CPU_MODEL_FILES,
    output:
        "results/holitom/cpu/holitom-wo-m/{cpu_rtag}.json",
    params:
        model_dir=lambda wc, input: os.path.dirname(input.metrics),
        n_samples=CPU["n_samples"],
        seed=CPU["seed"],
        split=CPU["split"],
        method="holitom-wo-m",
        options=CPU["options"].get("holitom-wo-m", {}),
        record={},
    log:
        "logs/holitom/cpu/holitom-wo-m/{cpu_rtag}.log",
    threads: CPU["threads"]
    conda:
        CONDA_ENV
    resources:
        mem_mb=1500,
        runtime=15,
    script:
        "../scripts/cpu_accuracy_cell.py"


rule holitom_cpu_sweeps:
    """All cpu-tier HoliTom cells (retention, K, R, merge) in one CSV; the frames sweep's not-run record."""
    input:
        HOLI_CELL_FILES,
        **CPU_MODEL_FILES,
    output:
        csv="results/holitom/cpu/sweeps.csv",
        frames="results/holitom/cpu/frames_sweep.json",
    params:
        cells=HOLI.cell_dicts(HOLI_CELLS),
        model_dir=lambda wc, input: os.path.dirname(input.metrics),
    log:
        "logs/holitom/cpu_sweeps.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=500,
        runtime=2,
    script:
        "../scripts/holitom_cpu_sweeps.py"


rule holitom_bench:
    """Stages I-II on a full-size OV video (32x196x3584 fp32, CPU): median times, threads, provenance."""
    output:
        "results/bench/holitom_stages.json",
    params:
        bench=HOLI_CFG["bench"],
    log:
        "logs/holitom/bench.log",
    threads: 2  # holds both cores so the timing runs alone (torch threads: holitom.bench.threads)
    conda:
        CONDA_ENV
    resources:
        mem_mb=3000,
        runtime=10,
    script:
        "../scripts/holitom_bench.py"


rule holitom_tables:
    """HoliTom's two tables (docs/sources.md#holitom-main-table, #holitom-backbones-table): reported
    beside reproduced (analytic FLOPs; accuracy cells not-run with the paper tier's reason) and the
    SynthVideoQA block of the cpu tier."""
    input:
        claims=str(CLAIMS_FILE),
        reported=REPORTED_CSVS,
        analytic=list(TIER_RESULTS["analytic"]),
        cpu=HOLI_CPU_ACC + HOLI_CPU_SWEEPS,
    output:
        HOLI_TABLES,
    params:
        cpu=HOLI_CPU,
        cpu_reason=TIERS.summary(config)["cpu"]["reason"],
    log:
        "logs/holitom/tables.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=3,
    script:
        "../scripts/holitom_tables.py"


rule holitom_figures:
    """TTFT breakdown, decode throughput, K sweep, frames sweep: the paper's values beside this
    machine's (cpu-bench timings labelled as such; SynthVideoQA accuracy; analytic FLOPs)."""
    input:
        reported=REPORTED_CSVS,
        analytic="results/holitom/analytic/sweeps.csv",
        cpu=HOLI_CPU_SWEEPS + HOLI_CPU_EFF,
    output:
        HOLI_FIGURES,
    log:
        "logs/holitom/figures.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=3,
    script:
        "../scripts/holitom_figures.py"


rule holitom_notebook:
    """figures/holitom.py.ipynb executed with papermill (as rule holitom_flops_notebook)."""
    input:
        notebook=str(REPO / "figures" / "holitom.py.ipynb"),
        main="results/tables/holitom_main.csv",
        analytic="results/holitom/analytic/sweeps.csv",
        cpu=HOLI_CPU_SWEEPS[:1],
    output:
        HOLI_NOTEBOOK,
    params:
        python=PYTHON,
        bindir=os.path.dirname(PYTHON),
        cpu_csv=lambda wc, input: input.cpu[0] if input.cpu else "",
        reported_dir=str(REPORTED_DIR),
        outdir=lambda wc, output: os.path.dirname(output[0]),
    log:
        notebook="logs/notebooks/holitom.py.ipynb",
        stderr="logs/notebooks/holitom.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=1500,
        runtime=5,
    shell:
        'PATH="{params.bindir}:$PATH" "{params.python}" -m papermill --no-progress-bar -k python3 '
        "{input.notebook:q} {log.notebook:q} -p main_csv {input.main:q} -p analytic_csv {input.analytic:q} "
        "-p cpu_sweeps_csv {params.cpu_csv:q} -p reported_dir {params.reported_dir:q} "
        "-p out_dir {params.outdir:q} > {log.stderr:q} 2>&1"


rule holitom_all:
    """`snakemake holitom_all`: HoliTom's sweeps, benchmark, tables, figures and notebook."""
    input:
        "results/holitom/analytic/sweeps.csv",
        HOLI_CPU_SWEEPS,
        "results/bench/holitom_stages.json",
        HOLI_TABLES,
        HOLI_FIGURES,
        HOLI_NOTEBOOK,


# No evaluator reads these; `all` builds them. The tables and figures combine the analytic and
# cpu tiers' results, so they are cpu-tier targets.
TIER_TARGETS["analytic"] += ["results/holitom/analytic/sweeps.csv", "results/bench/holitom_stages.json"]
TIER_TARGETS["cpu"] += [*HOLI_TABLES, *HOLI_FIGURES, *HOLI_NOTEBOOK]
