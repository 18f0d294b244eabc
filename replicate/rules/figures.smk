# Tables and figures regenerated from result files (showyourwork rule: every number from a file a
# rule wrote). `snakemake figures` builds only these.


rule holitom_flops_table:
    """HoliTom's FLOPs columns (docs/sources.md#holitom-main-table, #holitom-backbones-table): reported
    beside reproduced, with a match column."""
    input:
        "results/claims/all.json",
    output:
        md="results/tables/holitom_flops.md",
        tex="results/tables/holitom_flops.tex",
        csv="results/tables/holitom_flops.csv",
    log:
        "logs/figures/holitom_flops_table.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=500,
        runtime=2,
    script:
        "../scripts/holitom_flops_table.py"


rule flops_vs_retention:
    """Paper-convention FLOPs vs retention, one panel per model, one line per method."""
    input:
        "results/analytic/flops.csv",
    output:
        png="results/figures/flops_vs_retention.png",
        pdf="results/figures/flops_vs_retention.pdf",
    params:
        models=config["figures"]["flops_vs_retention"]["models"],
        methods=config["figures"]["flops_vs_retention"]["methods"],
    log:
        "logs/figures/flops_vs_retention.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=3,
    script:
        "../scripts/flops_vs_retention.py"


rule holitom_flops_notebook:
    """The thin notebook figures/holitom_flops.py.ipynb, executed with papermill (executed copy in logs/).

    papermill runs from the workflow's Python environment; its `python3` kernelspec starts `python`,
    so that environment's bin directory is put first on PATH."""
    input:
        notebook=str(REPO / "figures" / "holitom_flops.py.ipynb"),
        claims="results/claims/all.json",
        flops="results/analytic/flops.csv",
    output:
        md="results/figures/notebook/holitom_flops.md",
        png="results/figures/notebook/flops_vs_retention.png",
    params:
        python=PYTHON,
        bindir=os.path.dirname(PYTHON),
        outdir=lambda wc, output: os.path.dirname(output.md),
    log:
        notebook="logs/notebooks/holitom_flops.py.ipynb",
        stderr="logs/notebooks/holitom_flops.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=1500,
        runtime=5,
    shell:
        'PATH="{params.bindir}:$PATH" "{params.python}" -m papermill --no-progress-bar -k python3 '
        "{input.notebook:q} {log.notebook:q} -p claims_json {input.claims:q} -p flops_csv {input.flops:q} "
        "-p out_dir {params.outdir:q} > {log.stderr:q} 2>&1"


rule figures:
    input:
        rules.holitom_flops_table.output,
        rules.flops_vs_retention.output,
        rules.holitom_flops_notebook.output,
        "results/analytic/exact_vs_paper.md",
