"""``results/index.html``: the run's answers at a glance, one self-contained page (rule results_page).

Opened from disk with no network: CSS, script and figures (PNG data URIs) are inline. From the top:
the run (scale, commit, date), verdict counts per paper, per paper its headline claims as cards
(reported, reproduced, predicted, verdict, tier, one-line reason, the evidence one click away),
a chart of reproduced and predicted values against the reported ones, then a filterable, sortable
table of every claim with its evidence, and the run's figures. Rows are rendered here (the page reads
without script); the script only filters and sorts. ``python -m replicate.browsable results/index.html``
renders it in headless Chromium and checks it (replicate.headless).
"""
from __future__ import annotations

import base64
import html
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from . import io
from . import scale as run_scale
from .report import fmt, fmt_predicted, kind
from .report_groups import CATEGORIES, category_of
from .verify import TO_RUN, VERDICTS

PAPERS = {"holitom": "HoliTom", "tango": "Tango", "stts": "STTS"}
KIND_TITLES = {"paper": "paper claim", "project": "this project's claim", "analogue": "SynthVideoQA analogue"}
_ASSETS = Path(__file__).resolve().parent / "results_page"


def _e(text: Any) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def one_line(reason: str, limit: int = 240) -> str:
    """The first sentence (or clause) of a reason, and what would make the claim run where it says
    (verify.TO_RUN), at most ``limit`` characters."""
    text = " ".join(str(reason or "").split())
    why, _, todo = text.partition(". " + TO_RUN)
    for stop in (". ", "; "):
        head = why.split(stop, 1)[0]
        if len(head) < len(why):
            why = head + ("." if stop == ". " else "")
            break
    text = f"{why} → {todo}" if todo else why
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def run_facts(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Scale, commit and date of the run that wrote ``results``."""
    run = run_scale.of_results(results)
    prov = (results[0].get("provenance") or {}) if results else {}
    commit = prov.get("commit")
    return {**run, "label": run_scale.describe(run), "meaning": run.get("problem") or run_scale.MEANING.get(run["scale"], ""),
            "commit": (commit[:10] + (" (uncommitted changes)" if prov.get("dirty") else "")) if commit else "unknown",
            "date": (prov.get("timestamp") or "unknown").replace("T", " "), "config_hash": prov.get("config_hash")}


def headline_counts(results: Sequence[Mapping[str, Any]], headline: Sequence[str]) -> dict[str, dict[str, int]]:
    """{paper: {verdict: n}} over the headline claims present in ``results`` (what the cards show)."""
    ids = set(headline)
    out: dict[str, dict[str, int]] = {}
    for r in results:
        if r["id"] in ids:
            out.setdefault(r["paper"], Counter())[r["verdict"]] += 1
    return {p: dict(c) for p, c in out.items()}


# ---------------------------------------------------------------------------- pieces
def badge(verdict: str) -> str:
    return f"<span class='badge v-{_e(verdict)}' data-verdict='{_e(verdict)}'>{_e(verdict)}</span>"


def evidence_block(r: Mapping[str, Any]) -> str:
    """The claim's full reason, tolerance, source, evidence and provenance, behind one click."""
    src = r.get("source") or {}
    parts = {"reason": r.get("reason"), "claim": r.get("claim"), "setting": r.get("setting"),
             "source": src.get("ref") if isinstance(src, Mapping) else src, "tolerance": r.get("tolerance"),
             "predicted": r.get("predicted"), "evidence": r.get("evidence"), "run": r.get("run"),
             "provenance": r.get("provenance")}
    body = json.dumps({k: v for k, v in parts.items() if v not in (None, {}, "")}, indent=1, default=str,
                      sort_keys=False)
    return (f"<details class='evidence'><summary>evidence</summary><p class='file'>results/claims/{_e(r['id'])}.json"
            f"</p><pre>{_e(body)}</pre></details>")


def card(r: Mapping[str, Any]) -> str:
    return (f"<article class='card v-{_e(r['verdict'])}' data-claim='{_e(r['id'])}' data-verdict='{_e(r['verdict'])}'>"
            f"<header>{badge(r['verdict'])}<span class='tier'>{_e(r['tier'])} tier</span></header>"
            f"<h4>{_e(r.get('claim') or r['id'])}</h4><p class='cid'>{_e(r['id'])}</p>"
            "<dl>"
            f"<dt>reported</dt><dd>{_e(fmt(r['reported'], r['unit']) if r['reported'] is not None else fmt((r.get('paper_value_context')), r['unit']) + ' (context)')}</dd>"
            f"<dt>reproduced</dt><dd>{_e(fmt(r['measured'], r['unit']))}</dd>"
            f"<dt>predicted</dt><dd>{_e(fmt_predicted(r.get('predicted')))}</dd></dl>"
            f"<p class='why'>{_e(one_line(r['reason']))}</p>{evidence_block(r)}</article>")


def count_chips(counts: Mapping[str, int], where: str) -> str:
    chips = "".join(f"<span class='chip v-{_e(v)}' data-{where}-verdict='{_e(v)}' data-count='{counts[v]}'>"
                    f"<b>{counts[v]}</b> {_e(v)}</span>" for v in VERDICTS if counts.get(v))
    return f"<div class='chips'>{chips or '<span class=chip>none</span>'}</div>"


def _sort_key(value: Any) -> str:
    return "" if value is None else (f"{value:.12g}" if isinstance(value, (int, float)) else str(value))


def table_row(r: Mapping[str, Any]) -> str:
    pred = (r.get("predicted") or {}).get("value")
    cells = [(r["id"], r["id"]), (r["paper"], r["paper"]), (KIND_TITLES.get(kind(r), kind(r)), kind(r)),
             (r["tier"], r["tier"]), (r["quantity"], r["quantity"]),
             (fmt(r["reported"], r["unit"]), r["reported"]), (fmt(r["measured"], r["unit"]), r["measured"]),
             (fmt_predicted(r.get("predicted")), pred)]
    tds = "".join(f"<td data-sort='{_e(_sort_key(s))}'>{_e(t)}</td>" for t, s in cells)
    text = " ".join(str(x) for x in (r["id"], r.get("claim"), r["reason"], r["quantity"]))
    return (f"<tr class='claim' data-paper='{_e(r['paper'])}' data-verdict='{_e(r['verdict'])}' "
            f"data-tier='{_e(r['tier'])}' data-kind='{_e(kind(r))}' data-text='{_e(text.lower())}'>{tds}"
            f"<td data-sort='{_e(r['verdict'])}'>{badge(r['verdict'])}</td>"
            f"<td class='reason'>{_e(one_line(r['reason']))}{evidence_block(r)}</td></tr>")


def claims_table(results: Sequence[Mapping[str, Any]]) -> str:
    def options(name, values):
        return (f"<label>{name} <select id='f-{name}' data-filter='{name}'><option value=''>all</option>"
                + "".join(f"<option value='{_e(v)}'>{_e(v)}</option>" for v in values) + "</select></label>")

    filters = (options("paper", sorted({r["paper"] for r in results}))
               + options("verdict", [v for v in VERDICTS if any(r["verdict"] == v for r in results)])
               + options("tier", sorted({r["tier"] for r in results}))
               + options("kind", sorted({kind(r) for r in results}))
               + "<label>search <input id='f-text' type='search' placeholder='id, claim or reason'></label>"
               + f"<span id='shown' aria-live='polite'>{len(results)} of {len(results)} claims</span>")
    head = "".join(f"<th data-col='{i}' title='sort'>{h}</th>" for i, h in enumerate(
        ("claim", "paper", "kind", "tier", "quantity", "reported", "reproduced", "predicted", "verdict", "reason")))
    rows = "".join(table_row(r) for r in results)
    return (f"<div class='filters'>{filters}</div><table id='claims'><thead><tr>{head}</tr></thead>"
            f"<tbody>{rows}</tbody></table>")


# ---------------------------------------------------------------------------- chart
def _band(r: Mapping[str, Any]) -> tuple[float, float] | None:
    """The tolerance band as ratios to the reported value (None where there is none)."""
    tol, rep = r.get("tolerance") or {}, r.get("reported")
    if not rep or not tol or tol.get("comparator") == "argmax_within":
        return None
    half = tol["abs"] / abs(rep) if "abs" in tol else tol.get("rel")
    if half is None:
        return None
    comp = tol.get("comparator", "within")
    lo, hi = 1 - half, 1 + half
    return (lo, math.inf) if comp == "at_least" else (-math.inf, hi) if comp == "at_most" else (lo, hi)


def chart_rows(results: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for r in results:
        rep = r.get("reported")
        pred = (r.get("predicted") or {}).get("value")
        if not rep or (r.get("measured") is None and pred is None):
            continue
        rows.append({"id": r["id"], "verdict": r["verdict"], "band": _band(r),
                     "measured": None if r.get("measured") is None else r["measured"] / rep,
                     "predicted": None if pred is None else pred / rep, "unit": r["unit"], "reported": rep,
                     "raw_measured": r.get("measured"), "raw_predicted": pred})
    return rows


def ratio_chart(rows: Sequence[Mapping[str, Any]], title: str) -> str:
    """Inline SVG: per claim, reproduced (dot, verdict colour) and predicted (ring) as a ratio to the
    reported value on a log axis, the claim's tolerance band shaded around 1."""
    if not rows:
        return "<p class='muted'>No claim here has a reproduced or predicted number beside a reported one.</p>"
    values = [v for r in rows for v in (r["measured"], r["predicted"], *(r["band"] or ()))
              if v and v > 0 and math.isfinite(v)] + [1.0]
    lo, hi = math.log10(max(min(values) / 1.08, 1e-3)), math.log10(min(max(values) * 1.08, 1e3))
    lo, hi = min(lo, -0.05), max(hi, 0.05)
    left, width, row_h, top = 300, 460, 17, 40
    height = top + row_h * len(rows) + 26

    def x(ratio: float) -> float:
        return left + width * (math.log10(min(max(ratio, 10 ** lo), 10 ** hi)) - lo) / (hi - lo)

    out = [f"<svg class='chart' role='img' aria-label='{_e(title)}' viewBox='0 0 {left + width + 20} {height}' "
           f"width='{left + width + 20}' height='{height}' xmlns='http://www.w3.org/2000/svg'>",
           f"<text x='0' y='14' class='ct'>{_e(title)}</text>"]
    for tick in _ticks(lo, hi):
        out.append(f"<line x1='{x(tick):.1f}' x2='{x(tick):.1f}' y1='{top - 6}' y2='{height - 22}' class='grid'/>"
                   f"<text x='{x(tick):.1f}' y='{height - 8}' class='tick'>{tick:g}×</text>")
    out.append(f"<line x1='{x(1):.1f}' x2='{x(1):.1f}' y1='{top - 10}' y2='{height - 22}' class='one'/>"
               f"<text x='{x(1):.1f}' y='{top - 12}' class='tick'>reported</text>")
    for i, r in enumerate(rows):
        y = top + row_h * i + row_h / 2
        out.append(f"<text x='{left - 6}' y='{y + 4:.1f}' class='lab'>{_e(r['id'])}</text>")
        if r["band"]:
            b0, b1 = x(max(r["band"][0], 10 ** lo)), x(min(r["band"][1], 10 ** hi))
            out.append(f"<rect x='{b0:.1f}' y='{y - 6:.1f}' width='{max(b1 - b0, 1):.1f}' height='12' class='band'/>")
        if r["predicted"] is not None:
            out.append(f"<circle cx='{x(r['predicted']):.1f}' cy='{y:.1f}' r='5' class='pred'><title>predicted "
                       f"{fmt(r['raw_predicted'], r['unit'])} (reported {fmt(r['reported'], r['unit'])})</title></circle>")
        if r["measured"] is not None:
            out.append(f"<circle cx='{x(r['measured']):.1f}' cy='{y:.1f}' r='4' class='meas v-{_e(r['verdict'])}'>"
                       f"<title>reproduced {fmt(r['raw_measured'], r['unit'])} (reported {fmt(r['reported'], r['unit'])}): "
                       f"{_e(r['verdict'])}</title></circle>")
    out.append("</svg>")
    return "".join(out)


def _ticks(lo: float, hi: float) -> list[float]:
    """Ratios to mark on a log axis from 10**lo to 10**hi: of a few tick sets, the one (at most 7
    ticks) whose ticks span most of the range."""
    sets = ([0.8, 0.9, 1.1, 1.25, 1.5, 2], [0.5, 0.67, 0.8, 1.25, 1.5, 2, 3, 5], [0.1, 0.25, 0.5, 2, 4, 10],
            [0.001, 0.01, 0.1, 10, 100, 1000])
    best: list[float] = []
    for cands in sets:
        ticks = [t for t in cands if lo <= math.log10(t) <= hi]
        span = math.log10(max(ticks) / min(ticks)) if len(ticks) > 1 else 0
        if len(ticks) <= 7 and span > (math.log10(max(best) / min(best)) if len(best) > 1 else -1):
            best = ticks
    return best


def chart_legend() -> str:
    return ("<p class='legend'><svg width='14' height='12'><circle cx='7' cy='6' r='4' class='meas v-confirmed'/></svg>"
            " reproduced (colour: verdict) <svg width='14' height='12'><circle cx='7' cy='6' r='5' class='pred'/></svg>"
            " predicted by the cost model <svg width='22' height='12'><rect x='1' y='1' width='20' height='10' "
            "class='band'/></svg> the claim's tolerance band; every value divided by the reported one (log axis)</p>")


# ---------------------------------------------------------------------------- figures
def figure_blocks(figures: Sequence[str], smoke: bool) -> str:
    """The run's PNG figures, embedded (data URIs), grouped as the browsable report groups them."""
    groups: dict[str, list[str]] = {}
    for f in sorted(set(figures)):
        if f.endswith(".png") and Path(f).is_file():
            groups.setdefault(category_of(f), []).append(f)
    if not groups:
        return "<p class='muted'>This run wrote no figures.</p>"
    out = []
    for cat in (c for c in CATEGORIES if c in groups):
        out.append(f"<h3>{_e(CATEGORIES[cat])}</h3><div class='figs'>")
        for f in groups[cat]:
            data = base64.b64encode(Path(f).read_bytes()).decode("ascii")
            out.append(f"<figure><img loading='lazy' alt='{_e(Path(f).stem)}' src='data:image/png;base64,{data}'>"
                       f"<figcaption>{_e(_relative(f))}</figcaption></figure>")
        out.append("</div>")
    return "".join(out)


def _relative(path: str) -> str:
    parts = Path(path).parts
    return "/".join(parts[len(parts) - parts[::-1].index("results") - 1:]) if "results" in parts else path


# ---------------------------------------------------------------------------- page
def header(facts: Mapping[str, Any]) -> str:
    warn = "" if facts["scale"] == "full" else (
        f"<p class='scale-warning'><b>{_e(facts['scale'])} run</b>: {_e(facts['meaning'])}. Its verdicts show that "
        "the pipeline runs, not what the full default run (<code>snakemake --cores all</code>) finds.</p>")
    return (f"<header class='top'><h1>Tango, STTS and HoliTom: which claims hold</h1>"
            f"<p class='run'><span class='scale s-{_e(facts['scale'])}' id='run-scale' data-scale='{_e(facts['scale'])}'>"
            f"{_e(facts['label'])}</span> · commit <code id='run-commit'>{_e(facts['commit'])}</code> · "
            f"<span id='run-date'>{_e(facts['date'])}</span> · config {_e(facts.get('config_hash') or '?')}</p>{warn}"
            "<nav><a href='#headline'>headline claims</a> <a href='#charts'>charts</a> <a href='#all'>all claims</a> "
            "<a href='#figures'>figures</a> · <a href='claims/REPORT.md'>REPORT.md</a> "
            "<a href='report.html'>Snakemake report</a> (<code>snakemake --report results/report.html</code> "
            "writes it after the run)</nav></header>")


def overview(results: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for paper, title in PAPERS.items():
        mine = [r for r in results if r["paper"] == paper and kind(r) == "paper"]
        if mine:
            rows.append(f"<tr data-paper='{paper}'><th>{title}</th><td>{len(mine)}</td>"
                        f"<td>{count_chips(Counter(r['verdict'] for r in mine), 'all')}</td></tr>")
    return ("<table class='overview'><thead><tr><th>paper</th><th>claims</th><th>verdicts</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def headline_section(results: Sequence[Mapping[str, Any]], headline: Sequence[str],
                     extra: Mapping[str, Sequence[str]]) -> str:
    """Per paper the headline cards with their verdict counts; then this project's claims and the
    analogues (``extra``: title -> ids)."""
    by_id = {r["id"]: r for r in results}
    out = ["<section id='headline'><h2>Headline claims</h2>"]
    for paper, title in PAPERS.items():
        cards = [by_id[i] for i in headline if i in by_id and by_id[i]["paper"] == paper]
        if cards:
            out.append(f"<div class='paper' data-paper='{paper}'><h3>{title}</h3>"
                       f"{count_chips(Counter(r['verdict'] for r in cards), 'headline')}"
                       f"<div class='cards'>{''.join(card(r) for r in cards)}</div></div>")
    for title, ids in extra.items():
        cards = [by_id[i] for i in ids if i in by_id]
        if cards:
            out.append(f"<div class='paper extra'><h3>{_e(title)}</h3><div class='cards'>"
                       f"{''.join(card(r) for r in cards)}</div></div>")
    out.append("</section>")
    return "".join(out)


def charts_section(results: Sequence[Mapping[str, Any]], headline: Sequence[str]) -> str:
    head = set(headline)
    out = ["<section id='charts'><h2>Reported vs reproduced vs predicted</h2>", chart_legend()]
    for paper, title in PAPERS.items():
        mine = [r for r in results if r["paper"] == paper and kind(r) == "paper"]
        top = chart_rows(r for r in mine if r["id"] in head)
        rest = chart_rows(r for r in mine if r["id"] not in head)
        if not (top or rest):
            continue
        out.append(f"<h3>{title}</h3>" + (ratio_chart(top, f"{title}: headline claims") if top else ""))
        if rest:
            out.append(f"<details><summary>{len(rest)} more {title} claims with a number beside the reported one"
                       f"</summary>{ratio_chart(rest, f'{title}: other claims')}</details>")
    out.append("</section>")
    return "".join(out)


def render_page(results: Sequence[Mapping[str, Any]], *, headline: Sequence[str], figures: Sequence[str] = (),
                project: Sequence[str] = (), analogues: Sequence[str] = ()) -> str:
    facts = run_facts(results)
    css = (_ASSETS / "page.css").read_text()
    script = (_ASSETS / "page.js").read_text()
    extra = {"This project's own claims": project, "SynthVideoQA analogues (tiny model; not compared with the papers)": analogues}
    body = "".join((
        header(facts), "<main>", "<section id='overview'><h2>Verdicts per paper</h2>", overview(results), "</section>",
        headline_section(results, headline, extra), charts_section(results, headline),
        f"<section id='all'><h2>Every claim</h2>{claims_table(results)}</section>",
        f"<section id='figures'><h2>Figures</h2>{figure_blocks(figures, facts['scale'] == 'smoke')}</section>",
        "</main>"))
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>Results ({_e(facts['label'])}): Tango, STTS, HoliTom</title><style>{css}</style></head>"
            f"<body data-scale='{_e(facts['scale'])}'>{body}<script>{script}</script></body></html>")


def write_page(all_json: str, out: str, *, headline: Sequence[str], figures: Sequence[str] = (),
               project: Sequence[str] = (), analogues: Sequence[str] = ()) -> dict[str, Any]:
    """Rule results_page: ``results/index.html`` from the run's all.json and figures."""
    results = json.loads(Path(all_json).read_text())
    io.write_text(out, render_page(results, headline=headline, figures=figures, project=project, analogues=analogues))
    return {"claims": len(results), "headline": headline_counts(results, headline), "bytes": Path(out).stat().st_size}
