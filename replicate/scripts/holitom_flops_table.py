"""Rule holitom_flops_table: HoliTom's FLOPs columns, reported beside reproduced."""
from figures.tables import write_holitom_flops_table

write_holitom_flops_table(snakemake.input[0], md=snakemake.output.md, tex=snakemake.output.tex,  # noqa: F821
                          csv=snakemake.output.csv)  # noqa: F821
