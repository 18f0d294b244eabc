"""Rule results_page: results/index.html from all.json and the run's figures."""
from replicate.results_page import write_page

info = write_page(snakemake.input.claims, snakemake.output[0], headline=snakemake.params.headline,  # noqa: F821
                  figures=list(snakemake.input.figures), project=snakemake.params.project,  # noqa: F821
                  analogues=snakemake.params.analogues)  # noqa: F821
with open(snakemake.log[0], "w") as log:  # noqa: F821
    print(f"{snakemake.output[0]}: {info}", file=log)  # noqa: F821
