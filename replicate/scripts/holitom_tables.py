"""Rule holitom_tables: HoliTom's main table and other backbones (docs/sources.md#holitom-main-table,
#holitom-backbones-table), reported beside reproduced. (The tables' titles keep the section numbers
they were first published with.)"""
import csv
import json
import sys
from pathlib import Path

from figures.holitom import write_table
from replicate import holitom_tables as H
from replicate.claims import REPORTED_DIR, load_claims

sm = snakemake  # noqa: F821
with open(sm.log[0], "w") as log:
    sys.stderr = log
    results = H.claim_results_for_tables(load_claims(sm.input.claims), sm.config, ".")
    synth, reason = None, None
    if sm.params.cpu:
        sweeps = [p for p in sm.input.cpu if p.endswith("sweeps.csv")]
        import pandas as pd

        extra = []
        if sweeps:
            sw = pd.read_csv(sweeps[0])
            for src in sorted(set(sw[sw["sweep"] == "retention"]["source"])):
                c = json.loads(Path(src).read_text())
                extra.append(c)
        acc = [p for p in sm.input.cpu if p.endswith("accuracy.csv")]
        synth = H.synth_accuracy_frame(acc[0] if acc else None, extra)
        reason = "cpu tier: cell not in the cpu tier's grid"
    else:
        reason = f"cpu tier: {sm.params.cpu_reason}"
    for table, name, title in (("t1", "holitom_main", "HoliTom main table (§3.1), LLaVA-OV-7B, 32 frames"),
                               ("t2", "holitom_backbones", "HoliTom on other backbones (§3.2)")):
        reported = list(csv.DictReader(open(REPORTED_DIR / f"{name}.csv")))
        frame = H.assemble_table(reported, results, table, synth=synth, synth_reason=reason)
        out = next(p for p in sm.output if p.endswith(f"{name}.csv"))
        write_table(frame, Path(out).with_suffix(""), title, synth=table == "t1")
        print(f"{name}: {len(frame)} rows", file=log)
