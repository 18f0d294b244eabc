"""Snakemake script of rule paper_shard: replicate.paper.shard.run_shard (logic there)."""
import contextlib

import torch

from replicate.paper.cells import Cell
from replicate.paper.shard import run_shard

sm = snakemake  # noqa: F821 (injected by Snakemake)
torch.set_num_threads(int(sm.threads))
cell = Cell.from_dict(sm.params.cell)
config = {"paths": sm.params.paths, "paper": dict(sm.params.run),
          "seeds": list(sm.params.seeds)}
shard, n_shards = int(sm.wildcards.pshard), int(sm.wildcards.pn)
with open(sm.log[0], "w") as log, contextlib.redirect_stderr(log):
    header = run_shard(cell, shard, n_shards, config, sm.output[0], reuse=False)
    print(f"shard {shard}/{n_shards} of {cell.dir}: {header['status']} {header.get('reason') or ''}", file=log)
