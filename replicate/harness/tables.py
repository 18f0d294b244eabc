"""Aggregation of the harness's per-cell JSONs into the CSVs the evaluators and figures read."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

ACCURACY_COLUMNS = ("method", "label", "rtag", "retention", "status", "reason", "dataset", "setting", "n", "accuracy",
                    "perf_kept_pct", "vanilla_accuracy", "chance_accuracy", "mean_visual_tokens_llm", "mean_visual_tokens_layer_avg",
                    "vanilla_visual_tokens", "paper_macs", "paper_flops", "exact_flops", "llm_layers",
                    "options_applied", "layers_scaled", "per_family")


def accuracy_table(cells: Sequence[dict]):
    """One row per cell; perf_kept_pct = accuracy / vanilla accuracy * 100 (vanilla: the `full` cell)."""
    import pandas as pd

    van = [c for c in cells if c["method"] == "vanilla" and c.get("status") == "ok"]
    v_acc = van[0]["accuracy"] if van else None
    rows = []
    for c in cells:
        ok = c.get("status") == "ok"
        opts = c.get("options", {})
        rows.append({
            "method": c["method"], "label": c.get("label", c["method"]), "rtag": c["rtag"],
            "retention": c.get("retention"), "status": c.get("status"), "reason": c.get("reason"),
            "dataset": c.get("dataset"), "setting": c.get("setting"), "n": c.get("n"), "accuracy": c.get("accuracy"),
            "perf_kept_pct": (100.0 * c["accuracy"] / v_acc) if ok and v_acc else None,
            "vanilla_accuracy": v_acc, "chance_accuracy": c.get("chance_accuracy"),
            "mean_visual_tokens_llm": c.get("mean_visual_tokens_llm"),
            "mean_visual_tokens_layer_avg": c.get("mean_visual_tokens_layer_avg"),
            "vanilla_visual_tokens": c.get("vanilla_visual_tokens"),
            "paper_macs": c.get("paper_macs"), "paper_flops": c.get("paper_flops"),
            "exact_flops": c.get("exact_flops"), "llm_layers": c.get("llm_layers"),
            "options_applied": json.dumps(opts.get("applied", {}), sort_keys=True),
            "layers_scaled": json.dumps(opts.get("scaled", {}), sort_keys=True),
            "per_family": json.dumps(c.get("per_family", {}), sort_keys=True)})
    frame = pd.DataFrame(rows, columns=list(ACCURACY_COLUMNS))
    return frame.sort_values(["method", "rtag"], kind="stable").reset_index(drop=True)


def read_cells(paths: Iterable[str | Path]) -> list[dict]:
    """The cells, each checked against its content digest (``replicate.io.read_json``): a cell edited
    by hand or damaged never reaches a table."""
    from replicate.io import read_json

    return [read_json(p) for p in paths]


def efficiency_table(summary_rows: Sequence[dict]):
    import pandas as pd

    return pd.DataFrame(list(summary_rows)).sort_values(["method", "rtag"], kind="stable").reset_index(drop=True)
