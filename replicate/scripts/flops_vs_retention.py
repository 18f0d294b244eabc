"""Rule flops_vs_retention: FLOPs vs retention per method and model (PNG + PDF)."""
from figures.plots import write_flops_vs_retention
from replicate.io import verify_inputs

verify_inputs(snakemake.input)  # noqa: F821 (figures read the CSV as it is: checked here)

write_flops_vs_retention(snakemake.input[0], png=snakemake.output.png, pdf=snakemake.output.pdf,  # noqa: F821
                         models=snakemake.params.models, methods=snakemake.params.methods)  # noqa: F821
