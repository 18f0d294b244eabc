"""Rules verify_all / verify_claim: claim JSONs (and all.json for verify_all)."""
from replicate.rulelib import verify_claims

verify_claims(ids=snakemake.params.ids, claims_file=snakemake.input.claims,  # noqa: F821
              outputs=list(snakemake.output), config=snakemake.config,  # noqa: F821
              log_path=snakemake.log[0], declared=list(snakemake.input.results))  # noqa: F821
