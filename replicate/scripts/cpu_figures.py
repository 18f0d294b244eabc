"""Rule cpu_figures: cpu-tier figures (figures.cpu)."""
from pathlib import Path

from figures.cpu import write_cpu_figures

write_cpu_figures(snakemake.input.accuracy, snakemake.input.efficiency,  # noqa: F821
                       out_dir=Path(snakemake.output[0]).parent)  # noqa: F821
