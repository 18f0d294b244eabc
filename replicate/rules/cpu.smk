# cpu tier and gpu-tier timing.
#
#   train the tiny LLaVA-OV on SynthVideoQA (cached in results/cpu/model)
#   -> accuracy cell per (method, retention): results/cpu/accuracy/{method}/{rtag}.json -> accuracy.csv
#   the same for the LLaVA-Video layout (cpu.video): results/cpu/video/{model,accuracy,accuracy.csv}
#   -> CPU timing of the cpu-bench model (one job holding both cores): results/cpu/efficiency/... -> efficiency.csv
#   -> figures: results/figures/cpu_*.{png,pdf}
#   gpu tier: results/gpu/efficiency/{method}/{rtag}.json + summary.json (resources gpu=1; only
#   scheduled where the gpu tier can run: replicate/tiers.py)
from methods.registry import takes_retention as _takes_retention
from replicate.harness.options import number_tag as _number_tag, rtag as _rtag

# CPU, EFF, CPU_MODEL_FILES and the cpu_method / cpu_rtag constraints: common.smk (shared with holitom.smk)

# (method, rtag) of a grid: methods that prune nothing run once at `full`
_cells = lambda methods, retentions: [(m, _rtag(r)) for m in methods  # noqa: E731
                                      for r in (retentions if _takes_retention(m) else [None])]
CPU_CELLS = sorted(set(_cells(CPU["methods"], CPU["retentions"])))
CPU_VIDEO_CELLS = sorted(set(_cells(CPU["video"]["methods"], CPU["video"]["retentions"])))
EFF_CPU = EFF["cpu"]
EFF_GPU = EFF["gpu"]
EFF_CPU_CELLS = sorted(set(_cells(["vanilla", *EFF_CPU["methods"]], EFF_CPU["retentions"])))
EFF_GPU_CELLS = sorted(set(_cells(["vanilla", *EFF_GPU["methods"]], EFF_GPU["retentions"])))
CPU_FIGURES = [f"results/figures/cpu_{n}.{ext}" for n in ("accuracy_vs_retention", "accuracy_vs_flops",
                                                                "ttft_breakdown") for ext in ("png", "pdf")]
CPU_VIDEO_FIGURES = [f"results/figures/cpu_layouts_accuracy.{ext}" for ext in ("png", "pdf")] if CPU_VIDEO_CELLS else []


rule cpu_train:
    """Train the tiny model (skipped while its files exist: the checkpoint is the cache)."""
    output:
        **CPU_MODEL_FILES,
    params:
        out=lambda wc, output: os.path.dirname(output.metrics),
        smoke="--smoke" if CPU["train"]["smoke"] else "",
        seed=CPU["train"]["seed"],
        setting="llava-onevision",
        python=PYTHON,
    log:
        "logs/cpu/train.log",
    threads: 1  # the trainer runs one torch thread (replicate.synthvqa.train.TrainConfig.threads)
    conda:
        CONDA_ENV
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        '"{params.python}" -m replicate.synthvqa.train --out {params.out} {params.smoke} --seed {params.seed} '
        "--setting {params.setting} > {log:q} 2>&1"


use rule cpu_train as cpu_train_video with:
    # the same recipe in LLaVA-Video's token layout (a newline after every pooled row); runs beside
    # cpu_train, each on one core
    output:
        **CPU_VIDEO_MODEL_FILES,
    params:
        setting="llava-video",
    log:
        "logs/cpu/video/train.log",


rule cpu_accuracy_cell:
    """One (method, retention) accuracy cell on SynthVideoQA-test (not-applicable cells say why)."""
    input:
        **CPU_MODEL_FILES,
    output:
        "results/cpu/accuracy/{cpu_method}/{cpu_rtag}.json",
    params:
        model_dir=lambda wc, input: os.path.dirname(input.metrics),
        n_samples=CPU["n_samples"],
        seed=CPU["seed"],
        split=CPU["split"],
        method=lambda wc: wc.cpu_method,
        options=lambda wc: CPU["options"].get(wc.cpu_method, {}),
        record={"perf_kept_note": "perf_kept_pct is filled in results/cpu/accuracy.csv (needs the vanilla cell)"},
    log:
        "logs/cpu/accuracy/{cpu_method}/{cpu_rtag}.log",
    threads: CPU["threads"]
    conda:
        CONDA_ENV
    resources:
        mem_mb=1500,
        runtime=15,
    script:
        "../scripts/cpu_accuracy_cell.py"


rule cpu_layouts_figure:
    """Accuracy vs retention of the methods both layouts ran: LLaVA-OV layout beside LLaVA-Video's."""
    input:
        onevision="results/cpu/accuracy.csv",
        video="results/cpu/video/accuracy.csv",
    output:
        CPU_VIDEO_FIGURES,
    log:
        "logs/figures/cpu_layouts.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=3,
    script:
        "../scripts/cpu_layouts_figure.py"


rule cpu_accuracy_table:
    """All cells -> results/cpu/accuracy.csv with perf_kept_pct = accuracy / vanilla accuracy * 100."""
    input:
        [f"results/cpu/accuracy/{m}/{r}.json" for m, r in CPU_CELLS],
    output:
        "results/cpu/accuracy.csv",
    log:
        "logs/cpu/accuracy_table.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=500,
        runtime=2,
    script:
        "../scripts/cpu_accuracy_table.py"


use rule cpu_accuracy_cell as cpu_video_accuracy_cell with:
    # one (method, retention) cell of the LLaVA-Video-layout model (Tango with its intra-LLM stage)
    input:
        **CPU_VIDEO_MODEL_FILES,
    output:
        "results/cpu/video/accuracy/{cpu_method}/{cpu_rtag}.json",
    log:
        "logs/cpu/video/accuracy/{cpu_method}/{cpu_rtag}.log",


use rule cpu_accuracy_table as cpu_video_accuracy_table with:
    # its cells -> results/cpu/video/accuracy.csv (perf kept against its own vanilla)
    input:
        [f"results/cpu/video/accuracy/{m}/{r}.json" for m, r in CPU_VIDEO_CELLS],
    output:
        "results/cpu/video/accuracy.csv",
    log:
        "logs/cpu/video/accuracy_table.log",


rule cpu_efficiency:
    """CPU timings of the cpu-bench model, all cells in one job holding every thread (clean timing),
    with the cost model's predictions (cpu-2core efficiencies fitted on vanilla)."""
    output:
        cells=[f"results/cpu/efficiency/{m}/{r}.json" for m, r in EFF_CPU_CELLS],
        summary="results/cpu/efficiency/summary.json",
        csv="results/cpu/efficiency.csv",
    params:
        settings=EFF_CPU,
        seed=config["seeds"][0],
    log:
        "logs/cpu/efficiency.log",
    threads: 2  # reserves both cores so no other job runs beside the timing (torch threads: efficiency.cpu.threads)
    conda:
        CONDA_ENV
    resources:
        mem_mb=3000,
        runtime=20,
    script:
        "../scripts/cpu_efficiency.py"


rule gpu_efficiency:
    """Full-size random-weight timings on one CUDA device (same entry point a bare GPU box runs)."""
    output:
        cells=[f"results/gpu/efficiency/{m}/{r}.json" for m, r in EFF_GPU_CELLS],
        summary="results/gpu/efficiency/summary.json",
    params:
        python=PYTHON,
        arch=EFF_GPU["arch"],
        dtype=EFF_GPU["dtype"],
        frames=EFF_GPU["frames"],
        methods=",".join(EFF_GPU["methods"]),
        retentions=",".join(_number_tag(r, "efficiency.gpu.retentions") for r in EFF_GPU["retentions"]),
        repeats=EFF_GPU["repeats"],
        warmup=EFF_GPU["warmup"],
        decode=EFF_GPU["decode_tokens"],
        outdir=lambda wc, output: os.path.dirname(output.summary),
    log:
        "logs/gpu/efficiency.log",
    threads: 2
    conda:
        CONDA_ENV
    resources:
        gpu=1,
        mem_mb=32000,
        runtime=60,
    shell:
        '"{params.python}" -m replicate.harness.efficiency --arch {params.arch} --device cuda '
        "--dtype {params.dtype} --frames {params.frames} --methods {params.methods} "
        "--retention {params.retentions} --repeats {params.repeats} --warmup {params.warmup} "
        "--decode-tokens {params.decode} --out {params.outdir:q} > {log:q} 2>&1"


rule cpu_figures:
    """Accuracy vs retention, accuracy vs paper FLOPs (Pareto), CPU TTFT breakdown."""
    input:
        accuracy="results/cpu/accuracy.csv",
        efficiency="results/cpu/efficiency.csv",
    output:
        CPU_FIGURES,
    log:
        "logs/figures/cpu.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=3,
    script:
        "../scripts/cpu_figures.py"


rule cpu_all:
    """`snakemake cpu_all`: the cpu tier's results and figures only."""
    input:
        "results/cpu/accuracy.csv",
        "results/cpu/efficiency.csv",
        CPU_FIGURES,
        ["results/cpu/video/accuracy.csv"] if CPU_VIDEO_CELLS else [],
        CPU_VIDEO_FIGURES,


# The claim rules read these; `all` builds the figures.
TIER_RESULTS["cpu"] += ["results/cpu/accuracy.csv", "results/cpu/efficiency.csv"]
TIER_RESULTS["cpu"] += ["results/cpu/video/accuracy.csv"] if CPU_VIDEO_CELLS else []
TIER_TARGETS["cpu"] += CPU_FIGURES + CPU_VIDEO_FIGURES
TIER_RESULTS["gpu"] += ["results/gpu/efficiency/summary.json"]
