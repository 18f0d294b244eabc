"""Rules cpu_accuracy_cell (and its LLaVA-Video twin), holitom_cpu_cell and holitom_wo_m_cpu_cell:
one (method, retention) cell on SynthVideoQA (replicate.harness.accuracy.run_accuracy_cell).

Per rule, in params: ``method``, ``options`` (the config's options for the method, plus what the
rule's wildcards set: HoliTom's Stage III K, R and merge rule) and ``record`` (fields written
beside the result)."""
import sys

from replicate.harness.accuracy import run_accuracy_cell
from replicate.harness.options import parse_rtag
from replicate.io import write_json

sm = snakemake  # noqa: F821
with open(sm.log[0], "w") as log:
    sys.stderr = log  # tqdm progress goes to the log
    result = run_accuracy_cell(sm.params.model_dir, sm.params.method, dict(sm.params.options),
                               parse_rtag(sm.wildcards.cpu_rtag), n_samples=int(sm.params.n_samples),
                               seed=int(sm.params.seed), split=sm.params.split, threads=sm.threads,
                               config=sm.config)
    result.update(dict(sm.params.record))
    print(f"{result['method']} {sm.wildcards.cpu_rtag} {dict(sm.params.options)}: {result['status']} "
          f"accuracy={result.get('accuracy')} {result.get('reason') or ''}", file=log)
    write_json(sm.output[0], result)
