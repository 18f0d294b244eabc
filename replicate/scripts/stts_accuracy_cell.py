"""Rule stts_accuracy_cell: one (variant, pruning) cell of the cpu-tier STTS comparison."""
import sys

from replicate.io import write_json
from replicate.stts_train.compare import accuracy_cell, parse_ptag

sm = snakemake  # noqa: F821
with open(sm.log[0], "w") as log:
    sys.stderr = log  # tqdm progress goes to the log
    cell = accuracy_cell(sm.params.model_dir, sm.wildcards.stts_variant, parse_ptag(sm.wildcards.stts_ptag),
                         scorer=sm.params.scorer, n_samples=int(sm.params.n_samples), seed=int(sm.params.seed),
                         split=sm.params.split, threads=sm.threads, config=sm.config)
    print(f"{cell['variant']} {cell['ptag']}: accuracy={cell['accuracy']:.4f}", file=log)
    write_json(sm.output[0], cell)
