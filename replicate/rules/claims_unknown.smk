# A mistyped claim target (`snakemake results/claims/<typo>.json`) used to end in a bare
# MissingRuleException. This rule matches only ids that are not claims (nor all.json / summary.json)
# and fails while the DAG is built, naming the close ids.
from replicate.configuration import unknown_claim_message as _unknown_claim_message


def _unknown_claim(wildcards):
    raise WorkflowError(_unknown_claim_message(wildcards.unknown_claim, CLAIM_IDS))


rule unknown_claim:
    input:
        _unknown_claim,
    output:
        "results/claims/{unknown_claim}.json",
    wildcard_constraints:
        unknown_claim="(?!(?:" + claim_id_pattern() + "|all|summary)\\.json$)[^/]+",
    shell:
        "false"
