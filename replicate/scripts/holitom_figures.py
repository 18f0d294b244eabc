"""Rule holitom_figures: TTFT, decode, K-sweep and frames-sweep figures (paper beside this machine)."""
import sys
from pathlib import Path

from figures.holitom import write_figures
from replicate.claims import REPORTED_DIR
from replicate.io import verify_inputs

sm = snakemake  # noqa: F821
verify_inputs(sm.input)  # figures read the CSVs as they are: checked here
pick = lambda suffix: next((p for p in sm.input.cpu if p.endswith(suffix)), None)  # noqa: E731
with open(sm.log[0], "w") as log:
    sys.stderr = log
    written = write_figures(REPORTED_DIR, sm.input.analytic, Path(sm.output[0]).parent,
                            cpu_sweeps_csv=pick("sweeps.csv"), efficiency_csv=pick("efficiency.csv"),
                            frames_json=pick("frames_sweep.json"))
    print("\n".join(map(str, written)), file=log)
