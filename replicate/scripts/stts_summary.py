"""Rule stts_cpu_summary: cells + training metrics -> accuracy.csv, metrics.json, analogue.json, figure."""
from pathlib import Path

from figures.stts import cpu_accuracy_figure
from replicate.harness.stts_packing import measure_trained_tiny
from replicate.io import read_json, write_json
from replicate.stts_train.compare import analogue_records, summary_metrics, write_table

sm = snakemake  # noqa: F821
# read back only if they still match the content digests written with them (replicate.io)
cells = [read_json(p) for p in sm.input.cells]
train = {Path(p).parent.name: read_json(p) for p in sm.input.train}
rows = write_table(cells, sm.output.csv)
write_json(sm.output.metrics, summary_metrics(cells, train))
write_json(sm.output.analogue, {"records": analogue_records(cells)})
cpu_accuracy_figure(rows, sm.output.png, sm.output.pdf)
model_dir = str(Path(sm.input.model).parent)
write_json(sm.output.packing, {Path(s).parent.name: measure_trained_tiny(model_dir, s, int(Path(s).parent.name[1:]) / 100)
                               for s in sm.input.scorers})
with open(sm.log[0], "w") as log:
    for r in rows:
        print(r, file=log)
