"""Rule flops_vs_retention: FLOPs vs retention per method and model (PNG + PDF)."""
from figures.plots import write_flops_vs_retention

write_flops_vs_retention(snakemake.input[0], png=snakemake.output.png, pdf=snakemake.output.pdf,  # noqa: F821
                         models=snakemake.params.models, methods=snakemake.params.methods)  # noqa: F821
