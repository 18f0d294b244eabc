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
        plugins=lambda wc: list(EVALUATOR_PLUGINS),
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
        plugins=lambda wc: list(EVALUATOR_PLUGINS),
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
