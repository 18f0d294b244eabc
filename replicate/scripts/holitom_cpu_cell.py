"""Rule holitom_cpu_cell: one HoliTom cell with Stage III options (paper K, R, merge rule) on the tiny model."""
import sys

from replicate.harness.accuracy import run_accuracy_cell
from replicate.harness.options import parse_rtag
from replicate.io import write_json

sm = snakemake  # noqa: F821
wc = sm.wildcards
options = {**dict(sm.params.base_options), "inner_k": int(wc.hk), "inner_r": float(wc.hr), "merge": wc.hmerge}
with open(sm.log[0], "w") as log:
    sys.stderr = log
    result = run_accuracy_cell(sm.params.model_dir, "holitom", options, parse_rtag(wc.cpu_rtag),
                               n_samples=int(sm.params.n_samples), seed=int(sm.params.seed), split=sm.params.split,
                               threads=sm.threads, config=sm.config)
    result["holitom_sweep"] = {"paper_k": int(wc.hk), "inner_r": float(wc.hr), "merge": wc.hmerge,
                               "note": "paper K (28 layers) scaled to the tiny LLM: options.scaled.inner_k = [paper, applied]"}
    print(f"holitom k{wc.hk} R{wc.hr} {wc.hmerge} {wc.cpu_rtag}: {result['status']} "
          f"accuracy={result.get('accuracy')} {result.get('reason') or ''}", file=log)
    write_json(sm.output[0], result)
