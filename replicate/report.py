"""REPORT.md (reported vs reproduced vs predicted, one row per claim), summary.json and the README snippet.

Three kinds of claim are kept apart (replicate/claims.yaml `kind`): the papers' claims (verdicts
only from a tier that measures the paper's setting), this project's own claims (e.g. the cost model
against CPU timings) and the SynthVideoQA / CPU analogues (verdict ``analogue``: measured, never
compared with a paper's number).
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Mapping, Sequence

from . import scale as run_scale
from .verify import VERDICTS, judge

HEADER = "| id | paper | quantity | reported | reproduced | predicted | verdict | reason |"
RULE = "|---|---|---|---|---|---|---|---|"
KINDS = ("paper", "project", "analogue")


def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        text = f"{value:.4g}" if abs(value) < 1e4 else f"{value:.6g}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()


def fmt_predicted(pred: Mapping[str, Any] | None, *, hardware: bool = True) -> str:
    if not pred:
        return "—"
    text = fmt(pred["value"], pred.get("unit", ""))
    return f"{text} ({pred['hardware']})" if hardware and pred.get("hardware") else text


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def kind(r: Mapping[str, Any]) -> str:
    return r.get("kind", "paper")


def counts(results: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    c = Counter(r["verdict"] for r in results)
    return {v: c.get(v, 0) for v in VERDICTS if c.get(v, 0) or v in ("confirmed", "refuted", "not-run")}


def summary(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    papers = [r for r in results if kind(r) == "paper"]
    by_paper = {p: counts(r for r in papers if r["paper"] == p) for p in sorted({r["paper"] for r in papers})}
    by_tier = {t: counts(r for r in results if r["tier"] == t) for t in sorted({r["tier"] for r in results})}
    return {
        "run": run_scale.of_results(results), "total": len(results), "counts": counts(results), "by_paper": by_paper, "by_tier": by_tier,
        "by_kind": {k: counts(r for r in results if kind(r) == k) for k in KINDS},
        "claims": {r["id"]: {"kind": kind(r), "verdict": r["verdict"], "measured": r["measured"],
                             "reported": r["reported"], "predicted": (r.get("predicted") or {}).get("value"),
                             "unit": r["unit"], "reason": r["reason"]} for r in results},
    }


def table_rows(results: Iterable[Mapping[str, Any]]) -> list[str]:
    rows = []
    for r in results:
        rows.append("| " + " | ".join(_cell(x) for x in (
            r["id"], r["paper"], r["quantity"], fmt(r["reported"], r["unit"]), fmt(r["measured"], r["unit"]),
            fmt_predicted(r.get("predicted")),
            f"**{r['verdict']}**" if r["verdict"] == "refuted" else r["verdict"], r["reason"])) + " |")
    return rows


# ---------------------------------------------------------------------------- prediction vs claim
def _paper_amdahl(r: Mapping[str, Any], by_id: Mapping[str, Mapping[str, Any]]) -> str:
    """The paper's own Amdahl bound from its reported vanilla TTFT parts, when the claim cites them."""
    parts = {p: by_id.get(f"holitom-f-ttft-{p}-vanilla", {}).get("reported") for p in ("vit", "other", "llm")}
    if r["paper"] != "holitom":  # only HoliTom's figure prints a vanilla breakdown
        return ""
    if None in parts.values():
        return ""
    bound = sum(parts.values()) / (parts["vit"] + parts["other"])
    return (f" The paper's own vanilla breakdown (ViT {parts['vit']:g} + other {parts['other']:g} + LLM "
            f"{parts['llm']:g} ms) bounds any LLM-side method at {bound:.2f}x; the roofline's vision share is smaller.")


def _why(r: Mapping[str, Any], by_id: Mapping[str, Mapping[str, Any]]) -> str:
    pred, rep = r["predicted"], r["reported"]
    row = (r.get("evidence") or {}).get("analytic_prediction") or {}
    q = r["quantity"]
    if q in ("ttft_speedup", "efficiency_speedup"):
        bound = pred.get("amdahl_ttft_bound")
        text = (f"The roofline counts FLOPs and bytes only: vision {fmt(row.get('vision_ms'), 'ms')}, other "
                f"{fmt(row.get('other_ms'), 'ms')}, LLM prefill {fmt(row.get('llm_ms'), 'ms')} for the method; "
                f"its Amdahl bound (LLM prefill free) is {fmt(bound, 'x')}.")
        if rep < pred["value"]:
            text += (" A smaller measured speedup means time the roofline does not see: the method's own "
                     "reduction kernels, launch overhead, a slower vision tower or eager attention.")
            text += _paper_amdahl(r, by_id)
        return text
    if q == "decode_speedup":
        need = 100 * (1 - 1 / rep)
        return (f"Decode at batch 1 is weight-bandwidth bound: every token reads all LLM weights, and the visual KV "
                f"cache the method removes is a small share of the bytes (predicted {fmt(row.get('baseline_decode_tok_s'), 'tok/s')}"
                f" -> {fmt(row.get('method_decode_tok_s'), 'tok/s')}). {rep:g}x needs the vanilla decode step to spend "
                f"{need:.0f} % of its time on what pruning removes (attention over ~6k visual keys with eager "
                f"attention, per-token framework overhead), which a roofline does not model.")
    if q in ("latency_ms", "throughput_tok_s"):
        return (f"An absolute number on {pred.get('hardware')} ({pred.get('hardware_basis', '')}); the roofline assumes "
                "default stage efficiencies, so it is a lower bound on time, not a calibrated estimate.")
    return "The cost model's nominal schedule differs from what the paper reports."


ABSOLUTE_QUANTITIES = ("latency_ms", "throughput_tok_s", "memory_gb")


def _prediction_misses(results: Sequence[Mapping[str, Any]]):
    """(claim, rule) for papers' claims whose prediction lies outside the claim's own band."""
    for r in results:
        pred = r.get("predicted")
        if kind(r) != "paper" or not pred or r.get("tolerance") is None or r["reported"] is None:
            continue
        if pred.get("source") == "cost model (analytic tier)":
            continue  # the prediction is the measurement: the verdict already says it
        if r["tolerance"].get("comparator") == "argmax_within":
            continue
        verdict, rule = judge(pred["value"], r["reported"], r["tolerance"])
        if verdict != "confirmed":
            yield r, rule.replace("measured", "predicted")


def _absolute_summary(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per (paper, quantity) of absolute ms / tok/s cells: how far the roofline is off."""
    lines = []
    groups: dict[tuple[str, str], list] = {}
    for r in rows:
        groups.setdefault((r["paper"], r["quantity"]), []).append(r)
    for (paper, quantity), grp in sorted(groups.items()):
        ratios = sorted(r["predicted"]["value"] / r["reported"] for r in grp if r["reported"])
        pred = grp[0]["predicted"]
        direction = "shorter times" if quantity == "latency_ms" else "higher throughput"
        ids = ", ".join(f"`{r['id']}`" for r in grp[:3]) + (", ..." if len(grp) > 3 else "")
        lines.append(f"- {paper}, {len(grp)} absolute {quantity} cells ({ids}): predicted / reported = {ratios[0]:.2f}-{ratios[-1]:.2f} "
                     f"(median {ratios[len(ratios) // 2]:.2f}) on {pred.get('hardware')} ({pred.get('hardware_basis', '')}). "
                     f"A roofline at default stage efficiencies gives {direction} than a real run (kernel efficiency, "
                     "launch and framework overhead, eager attention); these bands are sanity checks and the "
                     "speedup claims carry the test.")
    return lines


def disagreements(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """Lines for 'where prediction and claim disagree, and why': papers' claims whose prediction lies
    outside the claim's own tolerance band around the reported value. Ratios one line each (with the
    reason), absolute times and throughputs summarised per paper."""
    by_id = {r["id"]: r for r in results}
    misses = list(_prediction_misses(results))
    lines = [f"- `{r['id']}`: reported {fmt(r['reported'], r['unit'])}, predicted {fmt_predicted(r['predicted'])} "
             f"({rule}). {_why(r, by_id)}" for r, rule in misses if r["quantity"] not in ABSOLUTE_QUANTITIES]
    return lines + _absolute_summary([r for r, _ in misses if r["quantity"] in ABSOLUTE_QUANTITIES])


# ---------------------------------------------------------------------------- sections
def _counts_line(results: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(f"{n} {v}" for v, n in counts(results).items() if n) or "none"


def _analogue_rows(results: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["| analogue | of | setting | measured | verdict | note |", "|---|---|---|---|---|---|"]
    for r in results:
        s = r.get("setting") or {}
        where = f"{s.get('model')}, {s.get('method')} at {s.get('retention')}, {s.get('frames')} frames"
        value = fmt(r["measured"], r["unit"]) if r["measured"] is not None else "—"
        lines.append("| " + " | ".join(_cell(x) for x in (
            f"`{r['id']}`", f"{r['paper']} {r.get('analogue_of') or ''}".strip(), where, value, r["verdict"],
            r["reason"] if r["verdict"] != "analogue" else s.get("note", ""))) + " |")
    return lines


def render_report(results: Sequence[Mapping[str, Any]], *, headline: Sequence[str] = (),
                  title: str | None = None) -> str:
    papers = [r for r in results if kind(r) == "paper"]
    run = run_scale.of_results(results)
    label = run_scale.describe(run)
    title = title or f"Claims of {'an' if label[0] in 'aeiou' else 'a'} {label}: reported vs reproduced vs predicted"
    lines = [f"# {title}", "", *_scale_note(run),
             f"{len(papers)} claims of the papers: {_counts_line(papers)}. Verdicts come only from a tier that "
             "measures the paper's setting (analytic: FLOPs and token counts; gpu: timings; paper: accuracy). "
             "`predicted` is the cost model's number for the paper's setting on the named hardware.", ""]
    lines += ["| paper | " + " | ".join(VERDICTS[:4]) + " |", "|---|" + "---|" * 4]
    for paper, pc in summary(results)["by_paper"].items():
        lines.append(f"| {paper} | " + " | ".join(str(pc.get(v, 0)) for v in VERDICTS[:4]) + " |")
    lines.append("")
    if headline:
        order = {cid: i for i, cid in enumerate(headline)}
        head = sorted((r for r in papers if r["id"] in order), key=lambda r: order[r["id"]])
        lines += ["## Headline claims", "", HEADER, RULE, *table_rows(head), ""]
    dis = disagreements(results)
    lines += ["## Where prediction and claim disagree, and why", ""]
    lines += dis or ["- none: every prediction lies inside its claim's band."]
    lines.append("")
    lines += _outcome_sections(papers)
    project = [r for r in results if kind(r) == "project"]
    if project:
        lines += ["## Claims of this project (not the papers')", "", HEADER, RULE, *table_rows(project), ""]
    analogues = [r for r in results if kind(r) == "analogue"]
    if analogues:
        lines += ["## SynthVideoQA / CPU analogues (measured; not compared with the papers' numbers)", "",
                  *_analogue_rows(analogues), ""]
    lines += ["## All claims of the papers", "", HEADER, RULE, *table_rows(papers), ""]
    return "\n".join(lines)


def _scale_note(run: Mapping[str, Any]) -> list[str]:
    """A warning under the title of anything but a full run (its numbers are not the replication's)."""
    if run["scale"] == "full":
        return []
    why = run.get("problem") or run_scale.MEANING.get(run["scale"], run["scale"])
    return [f"> **{run['scale']} run** ({why}; keys differing from the defaults: "
            f"{', '.join(run.get('differs') or []) or 'none'}). Its verdicts show that the pipeline runs, not what "
            "the full default run (`snakemake --cores all`) finds.", ""]


def _outcome_sections(papers: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = []
    for verdict, title in (("refuted", "Rows that do not match"),
                           ("config-unpublished", "Rows whose configuration the paper does not publish")):
        rows = [r for r in papers if r["verdict"] == verdict]
        if rows:
            lines += [f"## {title}", ""]
            for r in rows:
                note = (r.get("setting") or {}).get("note")
                lines.append(f"- `{r['id']}`: reported {fmt(r['reported'], r['unit'])}, measured "
                             f"{fmt(r['measured'], r['unit'])} ({r['reason']})" + (f". {note}" if note else ""))
            lines.append("")
    reasons = Counter(r["reason"] for r in papers if r["verdict"] == "not-run")
    if reasons:
        lines += ["## Why claims were not run", ""]
        lines += [f"- {n} x {reason}" for reason, n in reasons.most_common()]
        lines.append("")
    return lines


def render_readme_table(results: Sequence[Mapping[str, Any]], headline: Sequence[str],
                        project: Sequence[str] = (), analogues: Sequence[str] = ()) -> str:
    """Snippet for README.md: the papers' headline claims (reported, reproduced, predicted,
    verdict), then this project's claims and the analogues in their own tables."""
    def pick(ids):
        order = {cid: i for i, cid in enumerate(ids)}
        return sorted((r for r in results if r["id"] in order), key=lambda r: order[r["id"]])

    lines = ["| claim | paper | reported | reproduced | predicted | verdict |", "|---|---|---|---|---|---|"]
    for r in (r for r in pick(headline) if kind(r) == "paper"):
        lines.append(f"| `{r['id']}` | {r['paper']} | {fmt(r['reported'], r['unit'])} | "
                     f"{fmt(r['measured'], r['unit'])} | {fmt_predicted(r.get('predicted'))} | {r['verdict']} |")
    papers = [r for r in results if kind(r) == "paper"]
    lines += ["", f"All {len(papers)} claims of the papers: {_counts_line(papers)} (see results/claims/REPORT.md).", ""]
    if project:
        lines += ["This project's own claims:", "", "| claim | reported | reproduced | verdict | reason |",
                  "|---|---|---|---|---|"]
        lines += [f"| `{r['id']}` | {fmt(r['reported'], r['unit'])} | {fmt(r['measured'], r['unit'])} | "
                  f"{r['verdict']} | {_cell(r['reason'])} |" for r in pick(project)]
        lines.append("")
    if analogues:
        lines += ["SynthVideoQA / CPU analogues (a tiny model trained here; not compared with the papers):", "",
                  *_analogue_rows(pick(analogues)), ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- README
README_START, README_END = "<!-- claims-table:start -->", "<!-- claims-table:end -->"


def splice_readme(readme: str, table: str) -> str:
    """README text with the generated claims tables (results/claims/README_table.md) between the
    markers; the hand-written paragraph right after the start marker (run facts) is kept."""
    if README_START not in readme or README_END not in readme:
        raise ValueError(f"README has no {README_START} ... {README_END} block")
    head, rest = readme.split(README_START, 1)
    block, tail = rest.split(README_END, 1)
    intro = block.split("\n|", 1)[0].rstrip() if "\n|" in block else block.rstrip()
    return f"{head}{README_START}{intro}\n\n{table.strip()}\n{README_END}{tail}"


class NotAFullRun(ValueError):
    """The README's claims table comes from a full default run only."""


def readme_table_from_run(all_json) -> str:
    """The README snippet rendered from a run's claim JSONs (``all.json``), refused (NotAFullRun)
    unless that run was a full default run (replicate.scale)."""
    import json
    from pathlib import Path

    from .claims import ANALOGUE_HEADLINE_IDS, HEADLINE_IDS, PROJECT_HEADLINE_IDS

    results = json.loads(Path(all_json).read_text())
    run = run_scale.of_results(results)
    if run["scale"] != "full" or not run.get("default"):
        raise NotAFullRun(
            f"{all_json} comes from a {run_scale.describe(run)} ({run.get('problem') or run_scale.MEANING.get(run['scale'], '')}); "
            "the README's claims table is refreshed only from a full default run: `snakemake --cores all` "
            "with no profile, --config or --configfile, then `python -m replicate.report README.md "
            "results/claims/all.json`")
    return render_readme_table(results, HEADLINE_IDS, PROJECT_HEADLINE_IDS, ANALOGUE_HEADLINE_IDS)


def main(argv: Sequence[str] | None = None) -> int:
    """python -m replicate.report README.md results/claims/all.json: refresh the README's claims
    table from a full default run's claim JSONs (a README_table.md path reads the all.json beside it)."""
    import sys
    from pathlib import Path

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print(main.__doc__, file=sys.stderr)
        return 2
    readme, source = Path(args[0]), Path(args[1])
    all_json = source if source.suffix == ".json" else source.with_name("all.json")
    if not all_json.is_file():
        print(f"error: {all_json} not found: the README's table is rendered from a run's claim JSONs "
              "(run `snakemake --cores all` first)", file=sys.stderr)
        return 2
    try:
        table = readme_table_from_run(all_json)
    except NotAFullRun as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    readme.write_text(splice_readme(readme.read_text(), table))
    print(f"{readme}: claims table refreshed from {all_json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
