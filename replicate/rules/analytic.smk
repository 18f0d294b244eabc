# Analytic tier: the cost model on the papers' real architectures (no GPU, no weights).


rule analytic_flops:
    """FLOPs grid (config analytic.grid + every analytic claim's setting), both conventions."""
    input:
        claims=str(CLAIMS_FILE),
        reported=REPORTED_CSVS,
    output:
        csv="results/analytic/flops.csv",
        json="results/analytic/flops.json",
    params:
        grid=config["analytic"]["grid"],
        rounding=config["analytic"]["budget_rounding"],
        # a rerun trigger on the keys this rule reads only (the whole-config hash reran it on any edit)
        config_hash=config_hash({"analytic": config["analytic"]}),
    log:
        "logs/analytic/flops.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/analytic_flops.py"


rule analytic_exact_vs_paper:
    """What the papers' FLOPs convention leaves out: exact (GQA, SwiGLU, causal, ViT) vs paper."""
    input:
        "results/analytic/flops.csv",
    output:
        csv="results/analytic/exact_vs_paper.csv",
        md="results/analytic/exact_vs_paper.md",
    log:
        "logs/analytic/exact_vs_paper.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=500,
        runtime=2,
    script:
        "../scripts/exact_vs_paper.py"


rule analytic_predictions:
    """Roofline latency predictions (config hardware) for the gpu-tier speedup claims: evidence
    written beside those claims, never their measured value."""
    input:
        claims=str(CLAIMS_FILE),
    output:
        "results/analytic/predictions.csv",
    params:
        hardware=config["hardware"],
        dtype=config["dtype"],
        rounding=config["analytic"]["budget_rounding"],
    log:
        "logs/analytic/predictions.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=500,
        runtime=2,
    script:
        "../scripts/analytic_predictions.py"


TIER_RESULTS["analytic"] += [
    "results/analytic/flops.csv",
    "results/analytic/flops.json",
    "results/analytic/predictions.csv",
]
