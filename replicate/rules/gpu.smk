# gpu tier without a CUDA device: the committed GPU run (replicate/measured/<gpu>/measurements.jsonl,
# from replicate/gpu/device_run.sh) gives the result files the gpu evaluators read, stamped with where
# and when it was measured. With a CUDA device (and gpu: true) the measuring rules run instead
# (gpu_efficiency in cpu.smk, stts_efficiency_gpu in stts.smk): the ruleorder picks by GPU_SOURCE.
GPU_SOURCE = TIERS.gpu_source(config)
GPU_COMMITTED = TIERS.gpu_committed(config)


rule gpu_from_measured:
    """The gpu tier's results from the committed GPU run (no CUDA device here)."""
    input:
        [str(GPU_COMMITTED.path)] if GPU_COMMITTED is not None else [],
    output:
        summary="results/gpu/efficiency/summary.json",
        stts="results/gpu/stts/efficiency.json",
    log:
        "logs/gpu/from_measured.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=500,
        runtime=2,
    script:
        "../scripts/gpu_from_measured.py"


if GPU_SOURCE == "committed":

    ruleorder: gpu_from_measured > gpu_efficiency
    ruleorder: gpu_from_measured > stts_efficiency_gpu

else:

    ruleorder: gpu_efficiency > gpu_from_measured
    ruleorder: stts_efficiency_gpu > gpu_from_measured
