# A mistyped claim target (`snakemake results/claims/<typo>.json`) used to end in a bare
# MissingRuleException. This rule matches only ids that are not claims (nor all.json / summary.json)
# and fails while the DAG is built, naming the close ids.
from replicate.configuration import raise_unknown_claim as _raise_unknown_claim

_KNOWN_CLAIM_FILES = f"(?!(?:{claim_id_pattern()}|all|summary)\\.json$)[^/]+"


rule unknown_claim:
    input:
        lambda wc: _raise_unknown_claim(wc.unknown_claim, CLAIM_IDS),
    output:
        "results/claims/{unknown_claim}.json",
    log:
        "logs/claims/unknown/{unknown_claim}.log",
    wildcard_constraints:
        unknown_claim=_KNOWN_CLAIM_FILES,
    resources:
        mem_mb=100,
        runtime=1,
    conda:
        CONDA_ENV
    shell:
        "false"  # never reached: the input function fails first
