# Tango end to end (issue 11): analytic FLOPs / token tables for LLaVA-OV-7B, LLaVA-Video-7B (pre-LLM
# and with the intra-LLM stage) and Qwen2.5-VL-7B at r = 0.10 / 0.15 / 0.20, the README's A800 TTFT
# split beside the cost model's prediction, the measured effect of the released code's behaviours
# A/B (cpu), the pre-LLM speed benchmark against the released reference, figures and the notebook.
#
#   analytic: results/tango/analytic/{flops_tokens,ttft_split}.{csv,md}
#   cpu:      results/tango/cpu/behaviour.{csv,md}   (target tango_all; not part of `all`)
#   bench:    results/bench/tango.json   (explicit target; minutes on 2 cores, not part of `all`)
#   figures:  results/figures/tango_{flops,ttft[,behaviour]}.{png,pdf}; notebook results/figures/notebook/tango/
TANGO_FIGURES = [f"results/figures/tango_{n}.{ext}" for n in ("flops", "ttft") for ext in ("png", "pdf")]
TANGO_BEHAVIOUR = ["results/tango/cpu/behaviour.csv", "results/tango/cpu/behaviour.md"] + \
    [f"results/figures/tango_behaviour.{ext}" for ext in ("png", "pdf")]
TANGO_NOTEBOOK = ["results/figures/notebook/tango/tango_flops.md"]


rule tango_analytic:
    """Tango token counts and FLOPs (paper and exact conventions) per backbone; A800 TTFT split."""
    input:
        readme=str(REPORTED_DIR / "tango_readme_efficiency.csv"),
    output:
        flops_csv="results/tango/analytic/flops_tokens.csv",
        flops_md="results/tango/analytic/flops_tokens.md",
        ttft_csv="results/tango/analytic/ttft_split.csv",
        ttft_md="results/tango/analytic/ttft_split.md",
    log:
        "logs/tango/analytic.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=3,
    script:
        "../scripts/tango_analytic.py"


rule tango_behaviour:
    """tango_reduce at released vs paper fidelity on the synthetic OV-size video (tokens, FLOPs)."""
    output:
        csv="results/tango/cpu/behaviour.csv",
        md="results/tango/cpu/behaviour.md",
    params:
        retentions=[0.10, 0.15, 0.20],
        dim=3584,
    threads: 2
    log:
        "logs/tango/behaviour.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=4000,
        runtime=15,
    script:
        "../scripts/tango_behaviour.py"


rule tango_bench:
    """Pre-LLM speed vs the straightforward released reference (median of 5 after 1 warm-up)."""
    output:
        "results/bench/tango.json",
    params:
        python=PYTHON,
    threads: 2
    log:
        "logs/tango/bench.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        '"{params.python}" -m replicate.microbench.tango --out {output:q} --threads 2,1 > {log:q} 2>&1'


rule tango_figures:
    input:
        flops="results/tango/analytic/flops_tokens.csv",
        ttft="results/tango/analytic/ttft_split.csv",
    output:
        TANGO_FIGURES,
    log:
        "logs/tango/figures.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=3,
    script:
        "../scripts/tango_figures.py"


rule tango_behaviour_figure:
    input:
        behaviour="results/tango/cpu/behaviour.csv",
    output:
        [f"results/figures/tango_behaviour.{ext}" for ext in ("png", "pdf")],
    log:
        "logs/tango/behaviour_figure.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=3,
    script:
        "../scripts/tango_figures.py"


rule tango_notebook:
    """figures/tango.py.ipynb executed with papermill."""
    input:
        notebook=str(REPO / "figures" / "tango.py.ipynb"),
        flops="results/tango/analytic/flops_tokens.csv",
        ttft="results/tango/analytic/ttft_split.csv",
    output:
        TANGO_NOTEBOOK,
    params:
        python=PYTHON,
        bindir=os.path.dirname(PYTHON),
        outdir=lambda wc, output: os.path.dirname(output[0]),
    log:
        notebook="logs/notebooks/tango.py.ipynb",
        stderr="logs/notebooks/tango.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=1500,
        runtime=5,
    shell:
        'PATH="{params.bindir}:$PATH" "{params.python}" -m papermill --no-progress-bar -k python3 '
        "{input.notebook:q} {log.notebook:q} -p flops_csv {input.flops:q} -p ttft_csv {input.ttft:q} "
        "-p out_dir {params.outdir:q} > {log.stderr:q} 2>&1"


rule tango_all:
    """Everything of Tango's except the speed benchmark (rule tango_bench, minutes on 2 cores)."""
    input:
        "results/tango/analytic/flops_tokens.csv",
        TANGO_BEHAVIOUR,
        TANGO_FIGURES,
        TANGO_NOTEBOOK,


# `all` builds the analytic tables, figures and notebook (seconds); the behaviour table runs six
# full-size reductions (minutes on a loaded 2-core machine) and is built by `tango_all` only.
TIER_TARGETS["analytic"] += ["results/tango/analytic/flops_tokens.md", "results/tango/analytic/ttft_split.md",
                             *TANGO_FIGURES, *TANGO_NOTEBOOK]
