"""Rule cpu_efficiency: CPU timings of every cell + cost-model predictions -> JSONs and efficiency.csv."""
import json
import sys
from pathlib import Path

from replicate.harness.efficiency import provenance_block, run_efficiency, write_cells
from replicate.harness.tables import efficiency_table
from replicate.io import write_csv

sm = snakemake  # noqa: F821
s = dict(sm.params.settings)
with open(sm.log[0], "w") as log:
    sys.stderr = log
    cells = run_efficiency(arch=s.get("arch", "cpu-bench"), methods=list(s.get("methods", ["vanilla"])),
                           retentions=list(s.get("retentions", [0.1])), device="cpu", dtype="fp32",
                           frames=s.get("frames"), repeats=int(s.get("repeats", 3)), warmup=int(s.get("warmup", 1)),
                           decode_tokens=int(s.get("decode_tokens", 16)), threads=int(s.get("threads", 1)), seed=int(sm.params.seed))
    prov = provenance_block("cpu", "fp32", int(sm.params.seed), sm.config)
    summary = write_cells(cells, Path(sm.output.summary).parent, provenance=prov)
    write_csv(sm.output.csv, efficiency_table(json.loads(Path(summary).read_text())["cells"]))
