"""Rule cpu_accuracy_cell: one (method, retention) cell on SynthVideoQA (replicate.harness.accuracy)."""
import sys

from replicate.harness.accuracy import run_accuracy_cell
from replicate.harness.options import parse_rtag
from replicate.io import write_json

sm = snakemake  # noqa: F821
with open(sm.log[0], "w") as log:
    sys.stderr = log  # tqdm progress goes to the log
    result = run_accuracy_cell(sm.params.model_dir, sm.wildcards.cpu_method, dict(sm.params.options),
                               parse_rtag(sm.wildcards.cpu_rtag), n_samples=int(sm.params.n_samples),
                               seed=int(sm.params.seed), split=sm.params.split, threads=sm.threads,
                               config=sm.config)
    result["perf_kept_note"] = "perf_kept_pct is filled in results/cpu/accuracy.csv (needs the vanilla cell)"
    print(f"{result['method']} {result['rtag']}: {result['status']} accuracy={result.get('accuracy')} "
          f"{result.get('reason') or ''}", file=log)
    write_json(sm.output[0], result)
