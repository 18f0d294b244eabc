"""Rule holitom_analytic: FLOPs of HoliTom's sweeps on the analytic tier -> results/holitom/analytic/sweeps.csv."""
import sys

from replicate.holitom_tables import analytic_sweep_table, settings
from replicate.io import write_csv

sm = snakemake  # noqa: F821
with open(sm.log[0], "w") as log:
    sys.stderr = log
    frame = analytic_sweep_table(settings(sm.config), sm.params.rounding)
    print(frame.to_string(), file=log)
    write_csv(sm.output.csv, frame)
