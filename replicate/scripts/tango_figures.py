"""Rule tango_figures: Tango FLOPs-vs-retention, TTFT split and behaviour figures."""
import sys
from pathlib import Path

from figures.tango import write_figures

sm = snakemake  # noqa: F821
with open(sm.log[0], "w") as log:
    sys.stderr = log
    behaviour = sm.input.behaviour[0] if sm.input.behaviour else None
    for p in write_figures(sm.input.flops, sm.input.ttft, Path(sm.output[0]).parent, behaviour):
        print(p, file=log)
