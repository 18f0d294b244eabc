# STTS on the cpu tier: the scorer trained (not just run random) on the tiny SynthVideoQA model.
#
#   results/cpu/model -> stts_train_cpu per pruned fraction: results/cpu/stts/train/{ptag}/scorer.pt
#   -> stts_accuracy_cell per (variant, ptag): trained / untrained scorer, random groups, heuristic rule
#   -> stts_cpu_summary: results/cpu/stts/{accuracy.csv, metrics.json, analogue.json} + figure
# All of it is an analogue (synthetic data, 2x2 groups on a 2-block SigLIP); nothing here is compared
# with the paper's numbers as a verdict.
from replicate.stts_train.compare import VARIANTS as _STTS_VARIANTS, ptag as _stts_ptag

STTS_CFG = config["stts"]
STTS_TRAIN = STTS_CFG["train"]
STTS_PTAGS = [_stts_ptag(p) for p in STTS_CFG["pruned"]]
STTS_CELLS = [("vanilla", "full"), ("vanilla-half-frames", "full")] + [
    (v, t) for t in STTS_PTAGS for v in _STTS_VARIANTS if not v.startswith("vanilla")]
STTS_OUT = "results/cpu/stts"
STTS_FIGURES = [f"results/figures/stts_cpu_accuracy.{ext}" for ext in ("png", "pdf")]


wildcard_constraints:
    stts_ptag="full|p[0-9]+",
    stts_variant="|".join(_STTS_VARIANTS),


rule stts_train_cpu:
    """Train the STTS scorer at one pruned fraction (LM loss + 0.5 x aux; model frozen; 1 thread)."""
    input:
        **CPU_MODEL_FILES,
    output:
        scorer=f"{STTS_OUT}/train/{{stts_ptag}}/scorer.pt",
        metrics=f"{STTS_OUT}/train/{{stts_ptag}}/metrics.json",
    params:
        python=PYTHON,
        model_dir=lambda wc, input: os.path.dirname(input.metrics),
        out=lambda wc, output: os.path.dirname(output.scorer),
        topk=lambda wc: int(wc.stts_ptag[1:]) / 100,
        steps=STTS_TRAIN["steps"],
        batch=STTS_TRAIN["batch_size"],
        lr=STTS_TRAIN["lr"],
        seed=STTS_TRAIN["seed"],
        n_train=STTS_TRAIN["n_train"],
    log:
        "logs/cpu/stts/train_{stts_ptag}.log",
    threads: 1
    conda:
        CONDA_ENV
    resources:
        mem_mb=2000,
        runtime=15,
    shell:
        '"{params.python}" -m replicate.stts_train --out {params.out:q} --model-dir {params.model_dir:q} '
        "--topk {params.topk} --steps {params.steps} --batch-size {params.batch} --lr {params.lr} "
        "--seed {params.seed} --n-train {params.n_train} --threads 1 --restart-on-mismatch > {log:q} 2>&1"


rule stts_accuracy_cell:
    """One (variant, pruned fraction) cell on SynthVideoQA-test."""
    input:
        # the trained variant also needs its scorer
        unpack(lambda wc: {**CPU_MODEL_FILES, **({"scorer": f"{STTS_OUT}/train/{wc.stts_ptag}/scorer.pt"}
                                                 if wc.stts_variant == "stts-trained" else {})}),
    output:
        f"{STTS_OUT}/accuracy/{{stts_variant}}/{{stts_ptag}}.json",
    params:
        model_dir=lambda wc, input: os.path.dirname(input.metrics),
        scorer=lambda wc, input: input.get("scorer"),
        n_samples=STTS_CFG["n_samples"],
        seed=STTS_CFG["seed"],
        split=STTS_CFG["split"],
    log:
        "logs/cpu/stts/accuracy_{stts_variant}_{stts_ptag}.log",
    threads: 1
    conda:
        CONDA_ENV
    resources:
        mem_mb=1500,
        runtime=10,
    script:
        "../scripts/stts_accuracy_cell.py"


rule stts_cpu_summary:
    """accuracy.csv (per question family), metrics.json (accuracy per pruning level beside the
    untrained scorer and random groups, training time), analogue.json, the trained scorer's measured
    packing (packing.json) and the figure."""
    input:
        cells=[f"{STTS_OUT}/accuracy/{v}/{t}.json" for v, t in STTS_CELLS],
        train=[f"{STTS_OUT}/train/{t}/metrics.json" for t in STTS_PTAGS],
        scorers=[f"{STTS_OUT}/train/{t}/scorer.pt" for t in STTS_PTAGS],
        model=CPU_MODEL_FILES["metrics"],
    output:
        csv=f"{STTS_OUT}/accuracy.csv",
        metrics=f"{STTS_OUT}/metrics.json",
        analogue=f"{STTS_OUT}/analogue.json",
        packing=f"{STTS_OUT}/packing.json",
        png=STTS_FIGURES[0],
        pdf=STTS_FIGURES[1],
    log:
        "logs/cpu/stts/summary.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=3,
    script:
        "../scripts/stts_summary.py"


rule stts_cpu_all:
    """`snakemake stts_cpu_all`: the cpu tier's STTS training and comparison only."""
    input:
        f"{STTS_OUT}/accuracy.csv",
        f"{STTS_OUT}/metrics.json",
        STTS_FIGURES,


TIER_RESULTS["cpu"] += [f"{STTS_OUT}/metrics.json"]
TIER_TARGETS["cpu"] += [f"{STTS_OUT}/accuracy.csv", f"{STTS_OUT}/analogue.json", *STTS_FIGURES]


# ---- analytic tier: STTS tokens pruned measured (real selection + packing) and predicted speed-ups
STTS_ANALYTIC = {"packing": "results/analytic/stts_packing.json",
                 "predictions": "results/analytic/stts_efficiency.json",
                 "png": "results/figures/stts_speedup_vs_frames.png",
                 "pdf": "results/figures/stts_speedup_vs_frames.pdf"}


rule stts_analytic:
    """Selection + first-fit-decreasing packing (refill counted) on novelty scores at Molmo2-4B
    shapes; cost-model inference / training (fwd+bwd) speed-ups with the measured bins; figure."""
    output:
        **STTS_ANALYTIC,
    params:
        frames=STTS_CFG["analytic"]["frames"],
        topk=0.5,
        seed=0,
        families=STTS_CFG["analytic"]["families"],
        sweep_frames=STTS_CFG["analytic"]["sweep_frames"],
    log:
        "logs/analytic/stts.log",
    threads: 1
    conda:
        CONDA_ENV
    resources:
        mem_mb=3000,
        runtime=10,
    script:
        "../scripts/stts_analytic.py"


# ---- timing: vanilla vs STTS, one request and one training step (cpu: small Molmo2; gpu: Molmo2-4B)
rule stts_efficiency_cpu:
    output:
        "results/cpu/stts/efficiency.json",
    params:
        python=PYTHON,
        frames=",".join(str(f) for f in STTS_CFG["efficiency_cpu"]["frames"]),
        repeats=STTS_CFG["efficiency_cpu"]["repeats"],
        warmup=STTS_CFG["efficiency_cpu"]["warmup"],
    log:
        "logs/cpu/stts/efficiency.log",
    threads: 2  # runs alone for clean timing (torch uses 1 thread)
    conda:
        CONDA_ENV
    resources:
        mem_mb=3000,
        runtime=10,
    shell:
        '"{params.python}" -m replicate.harness.stts_efficiency --arch cpu-bench --frames {params.frames} '
        "--repeats {params.repeats} --warmup {params.warmup} --threads 1 --out {output:q} > {log:q} 2>&1"


rule stts_efficiency_gpu:
    output:
        "results/gpu/stts/efficiency.json",
    params:
        python=PYTHON,
        frames=",".join(str(f) for f in STTS_CFG["efficiency_gpu"]["frames"]),
        repeats=STTS_CFG["efficiency_gpu"]["repeats"],
        warmup=STTS_CFG["efficiency_gpu"]["warmup"],
        dtype=STTS_CFG["efficiency_gpu"]["dtype"],
    log:
        "logs/gpu/stts_efficiency.log",
    threads: 2
    conda:
        CONDA_ENV
    resources:
        gpu=1,
        mem_mb=32000,
        runtime=60,
    shell:
        '"{params.python}" -m replicate.harness.stts_efficiency --arch molmo2-4b --device cuda --dtype {params.dtype} '
        "--frames {params.frames} --repeats {params.repeats} --warmup {params.warmup} --out {output:q} > {log:q} 2>&1"


TIER_TARGETS["analytic"] += [STTS_ANALYTIC["predictions"], STTS_ANALYTIC["png"], STTS_ANALYTIC["pdf"]]
TIER_TARGETS["cpu"] += ["results/cpu/stts/efficiency.json"]
TIER_RESULTS["gpu"] += ["results/gpu/stts/efficiency.json"]
