"""Rule analytic_predictions: the cost model's prediction for every gpu-tier claim it can predict,
on each paper's hardware (claims.yaml `predictions`)."""
from replicate.claims import load_claims, load_document
from replicate.rulelib import predictions

predictions(claims=load_claims(snakemake.input.claims), hardware=snakemake.params.hardware,  # noqa: F821
            dtype=snakemake.params.dtype, rounding=snakemake.params.rounding,  # noqa: F821
            targets=load_document(snakemake.input.claims).get("predictions"),  # noqa: F821
            csv_path=snakemake.output[0], log_path=snakemake.log[0])  # noqa: F821
