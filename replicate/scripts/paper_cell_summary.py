"""Snakemake script of rule paper_cell_summary: replicate.paper.shard.summarise_cell."""
from replicate.io import write_json
from replicate.paper.cells import Cell
from replicate.paper.shard import summarise_cell

sm = snakemake  # noqa: F821 (injected by Snakemake)
summary = summarise_cell(Cell.from_dict(sm.params.cell), list(sm.input))
write_json(sm.output[0], summary)
with open(sm.log[0], "w") as log:
    print(f"{summary['status']}: {summary.get('headline_accuracy')} {summary.get('reason') or ''}", file=log)
