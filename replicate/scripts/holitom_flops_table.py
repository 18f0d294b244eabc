"""Rule holitom_flops_table: HoliTom's FLOPs columns, reported beside reproduced."""
from figures.tables import write_holitom_flops_table
from replicate.io import verify_inputs

verify_inputs(snakemake.input)  # noqa: F821 (figures read the claims as they are: checked here)

write_holitom_flops_table(snakemake.input[0], md=snakemake.output.md, tex=snakemake.output.tex,  # noqa: F821
                          csv=snakemake.output.csv)  # noqa: F821
