"""Rule holitom_cpu_sweeps: the cpu tier's HoliTom cells -> results/holitom/cpu/sweeps.csv (+ frames-sweep record)."""
import sys

from replicate.holitom_tables import CpuCell, cpu_frames_status, cpu_sweep_table, settings
from replicate.io import read_json, write_csv, write_json

sm = snakemake  # noqa: F821
with open(sm.log[0], "w") as log:
    sys.stderr = log
    cells = [CpuCell(**c) for c in sm.params.cells]
    results = {p: read_json(p) for p in sorted({c.path for c in cells})}  # checked against their digests
    frame = cpu_sweep_table(cells, results)
    print(frame.to_string(), file=log)
    write_csv(sm.output.csv, frame)
    write_json(sm.output.frames, cpu_frames_status(sm.params.model_dir, settings(sm.config)["frames"]))
