"""Rule tango_behaviour: measured effect of the released code's behaviours A/B -> results/tango/cpu/behaviour.{csv,md}."""
import sys

import torch

from replicate.tango_tables import behaviour_effects, markdown, write_csv

sm = snakemake  # noqa: F821
with open(sm.log[0], "w") as log:
    sys.stderr = log
    torch.set_num_threads(int(sm.threads))
    rows = behaviour_effects(retentions=sm.params.retentions, dim=int(sm.params.dim))
    write_csv(rows, sm.output.csv)
    with open(sm.output.md, "w") as fh:
        fh.write(markdown(rows))
    print(markdown(rows), file=log)
