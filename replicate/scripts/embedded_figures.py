"""Rule embedded_figures: cpu-tier figures (figures.embedded)."""
from pathlib import Path

from figures.embedded import write_embedded_figures

write_embedded_figures(snakemake.input.accuracy, snakemake.input.efficiency,  # noqa: F821
                       out_dir=Path(snakemake.output[0]).parent)  # noqa: F821
