"""Rule holitom_wo_m_cpu_cell: HoliTom (w/o M) at a retention the cpu grid does not run."""
import sys

from replicate.harness.accuracy import run_accuracy_cell
from replicate.harness.options import parse_rtag
from replicate.io import write_json

sm = snakemake  # noqa: F821
with open(sm.log[0], "w") as log:
    sys.stderr = log
    result = run_accuracy_cell(sm.params.model_dir, "holitom-wo-m", dict(sm.params.options),
                               parse_rtag(sm.wildcards.cpu_rtag), n_samples=int(sm.params.n_samples),
                               seed=int(sm.params.seed), split=sm.params.split, threads=sm.threads, config=sm.config)
    print(f"holitom-wo-m {sm.wildcards.cpu_rtag}: {result['status']} accuracy={result.get('accuracy')}", file=log)
    write_json(sm.output[0], result)
