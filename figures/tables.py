"""Tables regenerated from result files.

`holitom_flops_table` rebuilds HoliTom's FLOPs columns (docs/sources.md#holitom-main-table, #holitom-backbones-table) from the claim
results (results/claims/all.json): for every row, the reported TFLOPs and ratio beside the
reproduced ones and whether both claims were confirmed.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

FLOPS_PREFIXES = {"holitom-t1-flops-": "holitom-t1-ratio-", "holitom-t2-flops-": "holitom-t2-ratio-"}
COLUMNS = ["table", "model", "method", "pre_llm", "reported_tflops", "reproduced_tflops", "reported_ratio_pct",
           "reproduced_ratio_pct", "match", "note"]
MARK = {"confirmed": "yes", "refuted": "NO", "not-run": "not run", "config-unpublished": "config unpublished"}


def load_results(path: str | Path) -> list[dict[str, Any]]:
    return json.loads(Path(path).read_text())


def holitom_flops_table(results: Iterable[Mapping[str, Any]]):
    """One row per reported HoliTom table row (FLOPs and ratio claims paired by id)."""
    import pandas as pd

    by_id = {r["id"]: r for r in results}
    rows = []
    for cid, res in by_id.items():
        for flops_prefix, ratio_prefix in FLOPS_PREFIXES.items():
            if not cid.startswith(flops_prefix):
                continue
            ratio = by_id.get(ratio_prefix + cid[len(flops_prefix):])
            setting = res.get("setting") or {}
            verdicts = [res["verdict"]] + ([ratio["verdict"]] if ratio else [])
            match = ("yes" if all(v == "confirmed" for v in verdicts)
                     else "not run" if all(v == "not-run" for v in verdicts)
                     else "config unpublished" if "config-unpublished" in verdicts else "NO")
            retention = setting.get("retention")
            rows.append({
                "table": "3.1" if flops_prefix.startswith("holitom-t1") else "3.2",
                "model": setting.get("model"), "method": setting.get("method"),
                "pre_llm": "100 %" if retention is None or setting.get("method") == "fastv" else f"{100 * retention:.0f} %",
                "reported_tflops": res["reported"], "reproduced_tflops": _round(res["measured"], 2),
                "reported_ratio_pct": ratio["reported"] if ratio else 100.0,
                "reproduced_ratio_pct": _round(ratio["measured"], 2) if ratio else 100.0,
                "match": match, "note": setting.get("note", ""),
            })
    return pd.DataFrame(rows, columns=COLUMNS)


def _round(x, nd):
    return None if x is None else round(float(x), nd)


def to_markdown(frame) -> str:
    head = ("# HoliTom FLOPs columns: reported vs reproduced\n\n"
            "Paper convention (FastV formula, visual tokens, LLM prefill); `match` = the FLOPs and the "
            "ratio claims are both confirmed within their tolerances (see results/claims/REPORT.md).\n\n")
    return head + frame.to_markdown(index=False) + "\n"


def to_latex(frame) -> str:
    cols = ["model", "method", "pre_llm", "reported_tflops", "reproduced_tflops", "reported_ratio_pct",
            "reproduced_ratio_pct", "match"]
    lines = [r"\begin{tabular}{lllrrrrl}", r"\toprule",
             r"Model & Method & Pre-LLM & FLOPs (T) & Reproduced & Ratio (\%) & Reproduced & Match \\",
             r"\midrule"]
    for _, row in frame[cols].iterrows():
        cells = [str(row[c]).replace("%", r"\%").replace("_", r"\_") for c in cols]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


def write_holitom_flops_table(claims_json: str | Path, *, md: str, tex: str, csv: str):
    from figures import files as io

    frame = holitom_flops_table(load_results(claims_json))
    io.write_csv(csv, frame)
    io.write_text(md, to_markdown(frame))
    io.write_text(tex, to_latex(frame))
    return frame
