"""Rule tango_analytic: Tango FLOPs / token counts per backbone and the A800 TTFT split -> results/tango/analytic/."""
import sys
from pathlib import Path

from replicate.tango_tables import main_analytic

sm = snakemake  # noqa: F821
with open(sm.log[0], "w") as log:
    sys.stderr = log
    tables = main_analytic(Path(sm.output.flops_csv).parent)
    print(f"{len(tables['flops_tokens'])} FLOPs rows, {len(tables['ttft_split'])} TTFT rows", file=log)
