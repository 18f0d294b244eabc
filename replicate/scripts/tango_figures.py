"""Rules tango_figures / tango_behaviour_figure: Tango figures from the CSVs named as rule inputs."""
import sys
from pathlib import Path

from figures.tango import FIGURES, write_one
from replicate.io import verify_inputs

sm = snakemake  # noqa: F821
verify_inputs(sm.input)  # figures read the CSVs as they are: checked here
with open(sm.log[0], "w") as log:
    sys.stderr = log
    for kind in FIGURES:
        if kind in sm.input.keys():
            for p in write_one(kind, sm.input[kind], Path(sm.output[0]).parent):
                print(p, file=log)
