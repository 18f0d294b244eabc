from replicate.claims import PROJECT_HEADLINE_IDS

# Claims: one JSON per claim with reported, measured, verdict, reason, evidence and provenance.
#
# `verify_all` writes every claim in one job (hundreds of claims would otherwise be hundreds of
# jobs); `verify_claim` verifies one claim alone when that file is the target. The ruleorder makes
# a single-file target use `verify_claim`; `all` reaches the claim files through all.json.


wildcard_constraints:
    claim_id=claim_id_pattern(),


ruleorder: verify_claim > verify_all


rule verify_all:
    input:
        claims=str(CLAIMS_FILE),
        reported=REPORTED_CSVS,
        results=claim_inputs,
    output:
        claims=expand("results/claims/{claim_id}.json", claim_id=CLAIM_IDS),
        all="results/claims/all.json",
    params:
        ids=CLAIM_IDS,
        config_hash=CONFIG_HASH,
    log:
        "logs/claims/verify_all.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/verify_claims.py"


rule verify_claim:
    input:
        claims=str(CLAIMS_FILE),
        reported=REPORTED_CSVS,
        results=single_claim_inputs,
    output:
        "results/claims/{claim_id}.json",
    params:
        ids=lambda wc: [wc.claim_id],
        config_hash=CONFIG_HASH,
    log:
        "logs/claims/{claim_id}.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=500,
        runtime=2,
    script:
        "../scripts/verify_claims.py"


rule claims_report:
    input:
        "results/claims/all.json",
    output:
        report="results/claims/REPORT.md",
        summary="results/claims/summary.json",
        readme="results/claims/README_table.md",
    params:
        headline=list(HEADLINE_IDS),
        project=lambda wc: list(PROJECT_HEADLINE_IDS),
        analogues=lambda wc: list(ANALOGUE_HEADLINE_IDS),
    log:
        "logs/claims/report.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=500,
        runtime=2,
    script:
        "../scripts/claims_report.py"


# Browsable report: `snakemake --cores all && snakemake --report results/report.html`. Snakemake's
# --report reads a finished run, so the default target builds the report's assets (one bundle per
# category: that paper's claims table, figures and tables) and the second command renders them.
from replicate.browsable import CATEGORIES as REPORT_CATEGORIES

report: "../report_captions/workflow.rst"

# `--report` rebuilds the job graph from the config it is given: refuse one that is not the finished run's
if any(a == "--report" or a.startswith("--report=") for a in sys.argv):
    from replicate.scale import report_mismatch

    if (_mismatch := report_mismatch(config)) is not None:
        raise WorkflowError(_mismatch)

# figures and tables `all` builds outside TIER_TARGETS (see the Snakefile's rule all)
REPORT_STATIC = [
    "results/analytic/exact_vs_paper.md",
    "results/tables/holitom_flops.md",
    "results/figures/flops_vs_retention.png",
    "results/figures/notebook/holitom_flops.md",
    "results/figures/notebook/flops_vs_retention.png",
]


rule report_bundle:
    input:
        claims="results/claims/all.json",
        assets=report_assets,
    output:
        claims=report("results/report/{category}/claims.html", category="{category}", subcategory="claims table",
                      caption="../report_captions/claims.rst", labels={"page": "claims"}),
        figures=report(directory("results/report/{category}/figures"), patterns=["{name}.png"],
                       category="{category}", subcategory="figures", caption="../report_captions/figures.rst",
                       labels={"figure": "{name}"}),
        tables=report(directory("results/report/{category}/tables"), patterns=["{name}.html"],
                      category="{category}", subcategory="tables", caption="../report_captions/tables.rst",
                      labels={"table": "{name}"}),
    wildcard_constraints:
        category="|".join(REPORT_CATEGORIES),
    log:
        "logs/claims/report_{category}.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=500,
        # stated, so `snakemake --report` need not evaluate Snakemake's default disk resource, which
        # sizes the inputs asynchronously inside the report's own loop ("coroutine ... never awaited")
        disk_mb=1000,
        runtime=2,
    script:
        "../scripts/report_bundle.py"


TIER_TARGETS["analytic"] += [f"results/report/{c}/claims.html" for c in REPORT_CATEGORIES]


# The run's answers at a glance: results/index.html (self-contained; open it from disk). Headline
# claims per paper as cards, a filterable table of every claim with its evidence, charts, figures.
rule results_page:
    input:
        claims="results/claims/all.json",
        report="results/claims/REPORT.md",
        figures=results_page_figures,
    output:
        "results/index.html",
    params:
        headline=list(HEADLINE_IDS),
        project=lambda wc: list(PROJECT_HEADLINE_IDS),
        analogues=lambda wc: list(ANALOGUE_HEADLINE_IDS),
    log:
        "logs/claims/results_page.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=500,
        runtime=2,
    script:
        "../scripts/results_page.py"


TIER_TARGETS["analytic"] += ["results/index.html"]
