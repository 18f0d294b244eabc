"""Rule gpu_from_measured: the gpu tier's result files from the committed GPU run."""
from replicate.gpu.committed import find, write_results

found = find(snakemake.config)  # noqa: F821
if found is None:
    raise SystemExit("no committed GPU run under paths.gpu_measurements")
write_results(found, snakemake.output.summary, snakemake.output.stts)  # noqa: F821
with open(snakemake.log[0], "w") as fh:  # noqa: F821
    fh.write(found.describe() + "\n")
