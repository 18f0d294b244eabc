# Reduction overhead: the op-count benchmark of every method's reduction step (replicate/microbench/).
#   results/bench/reduction_ops.json   aten ops, host syncs with their call sites and CPU wall time at
#                                       the papers' shapes, three kinds of video, plus one prefill's
#                                       per-layer pruning overhead (python -m replicate.microbench.reduction_ops)
# The CPU comparison with the released Tango code and with an earlier commit is a separate command
# (python -m replicate.microbench.reduction_times; minutes, run by hand, results in docs/measured/).

RO_CFG = config["reduction_ops"]


rule reduction_ops:
    """Op and sync counts of every reduction (counted on the path a GPU runs) and indicative CPU times."""
    output:
        "results/bench/reduction_ops.json",
    params:
        python=PYTHON,
        dim="" if RO_CFG["dim"] is None else f"--dim {RO_CFG['dim']}",
        repeats=RO_CFG["repeats"],
        threads=RO_CFG["threads"],
    threads: 2  # holds both cores so the timings run alone
    log:
        "logs/bench/reduction_ops.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=4000,
        runtime=20,
    shell:
        '"{params.python}" -m replicate.microbench.reduction_ops --out {output:q} {params.dim} '
        "--repeats {params.repeats} --threads {params.threads} > {log:q} 2>&1"


TIER_TARGETS["cpu"] += ["results/bench/reduction_ops.json"]
