"""REPORT.md (reported vs reproduced, one row per claim), summary.json and the README snippet."""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Mapping, Sequence

from .verify import VERDICTS

HEADER = "| id | paper | quantity | reported | measured | verdict | reason |"
RULE = "|---|---|---|---|---|---|---|"


def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        text = f"{value:.4g}" if abs(value) < 1e4 else f"{value:.6g}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def counts(results: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    c = Counter(r["verdict"] for r in results)
    return {v: c.get(v, 0) for v in VERDICTS}


def summary(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    by_paper: dict[str, dict[str, int]] = {}
    for paper in sorted({r["paper"] for r in results}):
        by_paper[paper] = counts(r for r in results if r["paper"] == paper)
    by_tier = {t: counts(r for r in results if r["tier"] == t) for t in sorted({r["tier"] for r in results})}
    return {
        "total": len(results), "counts": counts(results), "by_paper": by_paper, "by_tier": by_tier,
        "claims": {r["id"]: {"verdict": r["verdict"], "measured": r["measured"], "reported": r["reported"],
                             "unit": r["unit"], "reason": r["reason"]} for r in results},
    }


def table_rows(results: Iterable[Mapping[str, Any]]) -> list[str]:
    rows = []
    for r in results:
        rows.append("| " + " | ".join(_cell(x) for x in (
            r["id"], r["paper"], r["quantity"], fmt(r["reported"], r["unit"]), fmt(r["measured"], r["unit"]),
            f"**{r['verdict']}**" if r["verdict"] == "refuted" else r["verdict"], r["reason"])) + " |")
    return rows


def render_report(results: Sequence[Mapping[str, Any]], *, headline: Sequence[str] = (),
                  title: str = "Claims: reported vs reproduced") -> str:
    c = counts(results)
    lines = [f"# {title}", "",
             f"{len(results)} claims: " + ", ".join(f"{n} {v}" for v, n in c.items()) + ".", ""]
    lines += ["| paper | " + " | ".join(VERDICTS) + " |", "|---|" + "---|" * len(VERDICTS)]
    for paper, pc in summary(results)["by_paper"].items():
        lines.append(f"| {paper} | " + " | ".join(str(pc[v]) for v in VERDICTS) + " |")
    lines.append("")
    refuted = [r for r in results if r["verdict"] == "refuted"]
    if refuted:
        lines += ["## Rows that do not match", ""]
        for r in refuted:
            note = (r.get("setting") or {}).get("note")
            lines.append(f"- `{r['id']}`: reported {fmt(r['reported'], r['unit'])}, measured "
                         f"{fmt(r['measured'], r['unit'])} ({r['reason']})" + (f". {note}" if note else ""))
        lines.append("")
    reasons = Counter(r["reason"] for r in results if r["verdict"] == "not-run")
    if reasons:
        lines += ["## Why claims were not run", ""]
        lines += [f"- {n} x {reason}" for reason, n in reasons.most_common()]
        lines.append("")
    if headline:
        head = [r for r in results if r["id"] in set(headline)]
        lines += ["## Headline claims", "", HEADER, RULE, *table_rows(head), ""]
    lines += ["## All claims", "", HEADER, RULE, *table_rows(results), ""]
    return "\n".join(lines)


def render_readme_table(results: Sequence[Mapping[str, Any]], headline: Sequence[str]) -> str:
    """Short snippet for README.md: the headline claims only."""
    order = {cid: i for i, cid in enumerate(headline)}
    head = sorted((r for r in results if r["id"] in order), key=lambda r: order[r["id"]])
    c = counts(results)
    lines = ["| claim | paper | reported | reproduced | verdict |", "|---|---|---|---|---|"]
    for r in head:
        lines.append(f"| `{r['id']}` | {r['paper']} | {fmt(r['reported'], r['unit'])} | "
                     f"{fmt(r['measured'], r['unit'])} | {r['verdict']} |")
    lines += ["", f"All {len(results)} claims: " + ", ".join(f"{n} {v}" for v, n in c.items())
              + " (see results/claims/REPORT.md).", ""]
    return "\n".join(lines)
