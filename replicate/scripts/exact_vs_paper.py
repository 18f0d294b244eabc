"""Rule analytic_exact_vs_paper: exact vs paper FLOPs conventions, CSV + Markdown."""
from replicate.rulelib import exact_vs_paper

exact_vs_paper(snakemake.input[0], csv_path=snakemake.output.csv, md_path=snakemake.output.md,  # noqa: F821
               log_path=snakemake.log[0])  # noqa: F821
