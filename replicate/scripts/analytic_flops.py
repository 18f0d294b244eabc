"""Rule analytic_flops: the FLOPs grid (config grid + analytic claims) as CSV and JSON."""
from replicate.claims import load_claims
from replicate.rulelib import analytic_flops

analytic_flops(claims=load_claims(snakemake.input.claims), grid=snakemake.params.grid,  # noqa: F821
               rounding=snakemake.params.rounding, csv_path=snakemake.output.csv,  # noqa: F821
               json_path=snakemake.output.json, log_path=snakemake.log[0], config=snakemake.config)  # noqa: F821
