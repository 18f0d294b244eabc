"""Rule analytic_predictions: predicted TTFT/decode speedups for the gpu-tier claims."""
from replicate.claims import load_claims
from replicate.rulelib import predictions

predictions(claims=load_claims(snakemake.input.claims), hardware=snakemake.params.hardware,  # noqa: F821
            dtype=snakemake.params.dtype, rounding=snakemake.params.rounding,  # noqa: F821
            csv_path=snakemake.output[0], log_path=snakemake.log[0])  # noqa: F821
