"""Rule cpu_figures: cpu-tier figures (figures.cpu)."""
from pathlib import Path

from figures.cpu import write_cpu_figures
from replicate.io import verify_inputs

verify_inputs(snakemake.input)  # noqa: F821 (figures read the CSVs as they are: checked here)

write_cpu_figures(snakemake.input.accuracy, snakemake.input.efficiency,  # noqa: F821
                       out_dir=Path(snakemake.output[0]).parent)  # noqa: F821
