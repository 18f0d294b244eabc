"""Rule cpu_layouts_figure: LLaVA-OV layout vs LLaVA-Video layout on SynthVideoQA (figures.cpu)."""
from pathlib import Path

from figures.cpu import write_layouts_figure
from replicate.io import verify_inputs

verify_inputs(snakemake.input)  # noqa: F821 (figures read the CSVs as they are: checked here)

write_layouts_figure(snakemake.input.onevision, snakemake.input.video,  # noqa: F821
                     out_dir=Path(snakemake.output[0]).parent)  # noqa: F821
