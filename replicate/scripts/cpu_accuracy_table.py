"""Rule cpu_accuracy_table: the accuracy cells -> results/cpu/accuracy.csv."""
from replicate.harness.tables import accuracy_table, read_cells
from replicate.io import write_csv

frame = accuracy_table(read_cells(snakemake.input))  # noqa: F821
write_csv(snakemake.output[0], frame)  # noqa: F821
with open(snakemake.log[0], "w") as log:  # noqa: F821
    log.write(frame[["method", "rtag", "status", "accuracy", "perf_kept_pct"]].to_string() + "\n")
