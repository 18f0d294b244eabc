"""Assets of the browsable report (``snakemake --report results/report.html``).

Snakemake's report shows the outputs a rule flags with ``report()``. Rule ``report_bundle`` (one job
per category) gathers what the default run produced into ``results/report/<category>/``: the
claims of that paper as an HTML table, every figure (PNG) and every table (Markdown rendered to
HTML). Categories: one per paper, this project's own claims and cost model, and the SynthVideoQA
analogues (never mixed with the papers).
"""
from __future__ import annotations

import html
import json
import shutil
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from . import io
from .headless import CHROMIUM_NAMES, find_chromium
from .report import fmt, fmt_predicted, kind
from .report_groups import ANALOGUE_MARKERS, CATEGORIES, category_of

STYLE = ("<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;font-size:13px}"
         "td,th{border:1px solid #bbb;padding:3px 6px;text-align:left}th{background:#eee}"
         ".refuted{color:#b00;font-weight:bold}.confirmed{color:#070}</style>")


def assets_for(category: str, files: Iterable[str]) -> dict[str, list[str]]:
    """The figures (.png) and tables (.md) of ``files`` that belong to ``category``."""
    mine = sorted({f for f in files if category_of(f) == category})
    return {"figures": [f for f in mine if f.endswith(".png")], "tables": [f for f in mine if f.endswith(".md")]}


def markdown_html(text: str, title: str) -> str:
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark").enable("table").render(text)
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>{STYLE}</head><body>{body}</body></html>"


def _in_category(r: Mapping[str, Any], category: str) -> bool:
    if category == "synthvideoqa":
        return kind(r) == "analogue"
    if category == "project":
        return kind(r) == "project"
    return kind(r) == "paper" and r["paper"] == category


def claims_html(results: Sequence[Mapping[str, Any]], category: str) -> str:
    """The claims of one category: reported, reproduced, predicted, verdict and reason."""
    rows = [r for r in results if _in_category(r, category)]
    head = ["claim", "tier", "reported", "reproduced", "predicted", "verdict", "reason"]
    out = [f"<h2>{html.escape(CATEGORIES[category])}: {len(rows)} claims</h2>"]
    if category == "synthvideoqa":
        out.append("<p>Measured on a tiny model trained here on SynthVideoQA; recorded, never compared with a "
                   "paper's number.</p>")
    out.append("<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>")
    for r in rows:
        cells = [r["id"], r["tier"], fmt(r["reported"], r["unit"]), fmt(r["measured"], r["unit"]),
                 fmt_predicted(r.get("predicted")), r["verdict"], r["reason"]]
        out.append("<tr>" + "".join(f"<td class='{html.escape(r['verdict']) if i == 5 else ''}'>{html.escape(str(c))}</td>"
                                    for i, c in enumerate(cells)) + "</tr>")
    out.append("</table>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>claims: {html.escape(category)}</title>"
            f"{STYLE}</head><body>{''.join(out)}</body></html>")


def bundle(category: str, *, all_json: str, files: Sequence[str], claims_out: str, figures_dir: str,
           tables_dir: str) -> dict[str, int]:
    """Write one category's claims page and copy/render its figures and tables."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown report category {category!r}; allowed: {', '.join(CATEGORIES)}")
    results = json.loads(Path(all_json).read_text())
    io.write_text(claims_out, claims_html(results, category))
    assets = assets_for(category, files)
    for d in (figures_dir, tables_dir):
        Path(d).mkdir(parents=True, exist_ok=True)
    for f in assets["figures"]:
        shutil.copyfile(f, Path(figures_dir) / _flat(f, ".png"))
    for f in assets["tables"]:
        io.write_text(str(Path(tables_dir) / _flat(f, ".html")), markdown_html(Path(f).read_text(), Path(f).stem))
    return {k: len(v) for k, v in assets.items()}


def _flat(path: str, ext: str) -> str:
    """results/figures/notebook/holitom/x.png -> notebook-holitom-x.png (unique, one level)."""
    parts = list(Path(path).with_suffix("").parts)
    if "results" in parts:  # relative to the results directory, wherever the run was
        parts = parts[len(parts) - parts[::-1].index("results"):]
    else:
        parts = parts[-1:]
    keep = [p for p in parts if p not in ("figures", "tables")]
    return "-".join(keep) + ext


# ---------------------------------------------------------------------------- render check
def render_check(report_html: str, screenshot: str | None = None, *, chromium: str | None = None,
                 timeout: int = 120, size: str = "1400,1000") -> str:
    """Render the report in headless Chromium; returns the DOM after its scripts ran (and writes a
    screenshot). Snakemake's report is a script-built page: text in the DOM means it rendered."""
    import subprocess
    import tempfile

    exe = chromium or find_chromium()
    if exe is None:
        raise FileNotFoundError(f"no Chromium found (tried {', '.join(CHROMIUM_NAMES)}); apt-get install chromium")
    url = Path(report_html).resolve().as_uri()
    with tempfile.TemporaryDirectory() as profile:
        base = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}", "--virtual-time-budget=15000", f"--window-size={size}"]
        dom = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=timeout)
        if dom.returncode != 0:
            raise RuntimeError(f"chromium --dump-dom failed ({dom.returncode}): {dom.stderr[-2000:]}")
        if screenshot:
            shot = subprocess.run([*base, f"--screenshot={Path(screenshot).resolve()}", url],
                                  capture_output=True, text=True, timeout=timeout)
            if shot.returncode != 0:
                raise RuntimeError(f"chromium --screenshot failed ({shot.returncode}): {shot.stderr[-2000:]}")
    return dom.stdout


# ---------------------------------------------------------------------------- results/index.html check
_VISIBLE_ROWS = "document.querySelectorAll('#claims tr.claim:not([hidden])').length"


def _set_filter(page, name: str, value: str) -> int:
    """Choose ``value`` in the table's ``name`` filter as a reader would; the visible row count."""
    return page.evaluate(f"""(() => {{ const s = document.getElementById('f-{name}'); s.value = {json.dumps(value)};
        s.dispatchEvent(new Event('change', {{bubbles: true}})); return {_VISIBLE_ROWS}; }})()""")


def _search(page, text: str) -> int:
    return page.evaluate(f"""(() => {{ const s = document.getElementById('f-text'); s.value = {json.dumps(text)};
        s.dispatchEvent(new Event('input', {{bubbles: true}})); return {_VISIBLE_ROWS}; }})()""")


def _dom_headline_counts(page) -> dict[str, dict[str, int]]:
    return page.evaluate("""(() => { const out = {};
        document.querySelectorAll('#headline .paper[data-paper]').forEach((p) => {
          const c = out[p.dataset.paper] = {};
          p.querySelectorAll('.card[data-verdict]').forEach((k) => { c[k.dataset.verdict] = (c[k.dataset.verdict] || 0) + 1; });
        }); return out; })()""")


def check_results_page(index_html: str, all_json: str | None = None, screenshot: str | None = None,
                       headline: Sequence[str] | None = None) -> dict[str, Any]:
    """Open results/index.html in headless Chromium and check it as a reader would: no console
    errors; the headline cards' verdict counts (read from the DOM) equal the claim JSONs'; each
    filter shows exactly the rows of its value; a search for a claim id finds that row. Returns
    ``{"problems": [...], ...}`` (empty problems: the page is right)."""
    from collections import Counter

    from .claims import HEADLINE_IDS
    from .headless import Browser
    from .results_page import headline_counts

    all_json = all_json or str(Path(index_html).parent / "claims" / "all.json")
    results = json.loads(Path(all_json).read_text())
    expected = headline_counts(results, HEADLINE_IDS if headline is None else headline)
    problems: list[str] = []
    with Browser() as browser:
        page = browser.open(index_html)
        dom_counts = _dom_headline_counts(page)
        if dom_counts != expected:
            problems.append(f"headline verdict counts on the page {dom_counts} != claim JSONs {expected}")
        total = page.evaluate(_VISIBLE_ROWS)
        if total != len(results):
            problems.append(f"{total} table rows visible before filtering, {len(results)} claims")
        filtered = {}
        for name, key in (("verdict", "verdict"), ("paper", "paper"), ("tier", "tier")):
            for value, n in Counter(r[key] for r in results).items():
                filtered[f"{name}={value}"] = shown = _set_filter(page, name, value)
                if shown != n:
                    problems.append(f"filter {name}={value} shows {shown} rows, {n} claims have it")
            _set_filter(page, name, "")
        if results and _search(page, results[-1]["id"]) < 1:
            problems.append(f"searching {results[-1]['id']!r} shows no row")
        _search(page, "")
        if screenshot:
            page.screenshot(screenshot)
        problems += [f"browser: {e}" for e in page.errors]
    return {"problems": problems, "headline": dom_counts, "rows": total, "filtered": filtered,
            "scale": page_scale(index_html)}


def page_scale(index_html: str) -> str | None:
    import re

    found = re.search(r"<body data-scale='([^']*)'", Path(index_html).read_text(errors="replace"))
    return found.group(1) if found else None


def main(argv: Sequence[str] | None = None) -> int:
    """python -m replicate.browsable results/index.html [--screenshot shot.png]: check the results page
    (console errors, headline counts against the claim JSONs, filters); a Snakemake report
    (results/report.html): render it and check every category is on the page."""
    import argparse

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("page", help="results/index.html or results/report.html")
    p.add_argument("--screenshot")
    p.add_argument("--claims", help="all.json of the run (default: claims/all.json beside the page)")
    args = p.parse_args(argv)
    if not Path(args.page).is_file():
        p.error(f"{args.page} not found (results/index.html: `snakemake --cores all`; results/report.html: "
                "`snakemake --report results/report.html` after the run)")
    if Path(args.page).name == "index.html":
        out = check_results_page(args.page, args.claims, args.screenshot)
        print(f"{out['rows']} claims in the table; headline verdicts {out['headline']}; run scale {out['scale']}")
        for problem in out["problems"]:
            print(f"problem: {problem}")
        return 1 if out["problems"] else 0
    dom = render_check(args.page, args.screenshot)
    missing = [t for t in CATEGORIES if t not in dom]
    print(f"rendered {len(dom)} characters of DOM; categories missing from it: {missing or 'none'}")
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
