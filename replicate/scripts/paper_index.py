"""Snakemake script of rule paper_index: replicate.paper.shard.write_index."""
from replicate.paper.shard import write_index

sm = snakemake  # noqa: F821 (injected by Snakemake)
index = write_index(list(sm.input), sm.output[0], {"paper": {"rehearsal": sm.params.rehearsal}})
with open(sm.log[0], "w") as log:
    print(f"{len(index['cells'])} cells", file=log)
