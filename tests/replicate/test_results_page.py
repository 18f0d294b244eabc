"""results/index.html: the page's content from the claim JSONs, self-contained, and (where Chromium is
installed) checked in a real headless browser: no console errors, headline counts read from the DOM
equal the JSONs', the filters change the visible rows."""
from __future__ import annotations

import itertools
import json
import re

import pytest

from replicate.browsable import check_results_page, find_chromium
from replicate.claims import ANALOGUE_HEADLINE_IDS, HEADLINE_IDS, PROJECT_HEADLINE_IDS, load_claims
from replicate.results_page import chart_rows, headline_counts, one_line, render_page, write_page

SMOKE = {"scale": "smoke", "default": False, "differs": ["cpu.train"]}


def claims_json(run=SMOKE):
    """Every registered claim with verdicts cycled over the outcomes (a run's all.json in shape)."""
    verdicts = itertools.cycle(["confirmed", "not-run", "refuted", "not-run", "config-unpublished"])
    out = []
    for c in load_claims():
        k = c.get("kind", "paper")
        v = "analogue" if k == "analogue" else next(verdicts)
        rep = c["reported"]["value"]
        measured = rep * 1.02 if v != "not-run" and isinstance(rep, (int, float)) else None
        out.append({"id": c["id"], "paper": c["paper"], "kind": k, "quantity": c["quantity"], "claim": c.get("claim"),
                    "tier": c["tier"], "reported": None if k == "analogue" else rep, "unit": c["reported"]["unit"],
                    "tolerance": c.get("tolerance"), "measured": measured, "verdict": v,
                    "predicted": {"value": rep * 1.5, "unit": c["reported"]["unit"], "hardware": "a100-80g"}
                    if c["tier"] == "gpu" and isinstance(rep, (int, float)) else None,
                    "reason": f"why {c['id']} <b>. second sentence", "evidence": {"rows": [1, 2]}, "run": run,
                    "provenance": {"commit": "0123456789abcdef", "dirty": False,
                                   "timestamp": "2026-01-02T03:04:05+00:00", "config_hash": "abc"}})
    return out


def page(results, **kw):
    return render_page(results, headline=HEADLINE_IDS, project=PROJECT_HEADLINE_IDS, analogues=ANALOGUE_HEADLINE_IDS, **kw)


def test_page_states_the_run_and_has_a_card_per_headline_claim():
    results = claims_json()
    text = page(results)
    assert "data-scale='smoke'" in text and "smoke run</span>" in text and "0123456789" in text
    assert "2026-01-02 03:04:05" in text and "class='scale-warning'" in text
    cards = re.findall(r"<article class='card v-([a-z-]+)' data-claim='([^']+)'", text)
    ids = {cid for _, cid in cards}
    assert set(HEADLINE_IDS) | set(PROJECT_HEADLINE_IDS) | set(ANALOGUE_HEADLINE_IDS) == ids
    expected = headline_counts(results, HEADLINE_IDS)
    got: dict = {}
    by_id = {r["id"]: r for r in results}
    for verdict, cid in cards:
        if cid in HEADLINE_IDS:
            got.setdefault(by_id[cid]["paper"], {}).setdefault(verdict, 0)
            got[by_id[cid]["paper"]][verdict] += 1
    assert got == expected
    assert text.count("<tr class='claim'") == len(results)
    assert "&lt;b&gt;" in text and "<b>. second" not in text  # reasons are escaped


def test_page_is_self_contained():
    text = page(claims_json())
    external = re.findall(r"""(?:src|href)\s*=\s*['"]?(?:https?:)?//""", text)
    assert external == [] and "<link" not in text and "@import" not in text
    assert "<style>" in text and "<script>" in text and "</html>" in text


def test_full_run_has_no_scale_warning():
    text = page(claims_json({"scale": "full", "default": True, "differs": []}))
    assert "full default run</span>" in text and "class='scale-warning'" not in text


def test_figures_are_embedded_and_grouped(tmp_path):
    png = tmp_path / "results" / "figures" / "holitom_ttft.png"
    png.parent.mkdir(parents=True)
    png.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    text = page(claims_json(), figures=[str(png), str(tmp_path / "missing.png")])
    assert "data:image/png;base64,iVBORw0KGgpmYWtl" in text and "results/figures/holitom_ttft.png" in text


def test_one_line_and_chart_rows():
    assert one_line("first part; then more") == "first part"
    assert one_line("Sentence one. Sentence two") == "Sentence one."
    assert len(one_line("x" * 500)) == 240
    assert one_line("paper tier cannot run: no checkpoint; no dataset. To run it: set paths.x") == (
        "paper tier cannot run: no checkpoint → set paths.x")
    rows = chart_rows([{"id": "a", "verdict": "refuted", "reported": 2.0, "measured": 3.0, "unit": "x",
                        "predicted": {"value": 1.0}, "tolerance": {"rel": 0.15}},
                       {"id": "b", "verdict": "not-run", "reported": 2.0, "measured": None, "unit": "x"}])
    assert len(rows) == 1 and rows[0]["measured"] == 1.5 and rows[0]["predicted"] == 0.5
    assert rows[0]["band"] == pytest.approx((0.85, 1.15))


def test_write_page_reports_counts(tmp_path):
    (tmp_path / "all.json").write_text(json.dumps(claims_json()))
    info = write_page(str(tmp_path / "all.json"), str(tmp_path / "index.html"), headline=HEADLINE_IDS)
    assert info["claims"] == len(load_claims()) and info["headline"] == headline_counts(claims_json(), HEADLINE_IDS)


needs_chromium = pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed (apt-get install "
                                    "chromium): the results page's in-browser checks need a real browser")


@needs_chromium
def test_page_in_headless_chromium(tmp_path):
    results = claims_json()
    (tmp_path / "claims").mkdir()
    (tmp_path / "claims" / "all.json").write_text(json.dumps(results))
    (tmp_path / "index.html").write_text(page(results))
    out = check_results_page(str(tmp_path / "index.html"), screenshot=str(tmp_path / "shot.png"))
    assert out["problems"] == []
    assert out["headline"] == headline_counts(results, HEADLINE_IDS)
    assert out["rows"] == len(results)
    assert out["filtered"]["verdict=refuted"] == sum(r["verdict"] == "refuted" for r in results) < len(results)
    assert (tmp_path / "shot.png").stat().st_size > 20_000


@needs_chromium
def test_browser_check_fails_on_a_broken_page(tmp_path):
    """The check can fail: a script error, a headline card whose verdict disagrees with the JSON, and a
    table whose filter no longer works are each reported."""
    results = claims_json()
    (tmp_path / "claims").mkdir()
    (tmp_path / "claims" / "all.json").write_text(json.dumps(results))
    text = page(results)
    first = HEADLINE_IDS[0]
    text = text.replace(f"data-claim='{first}' data-verdict='", f"data-claim='{first}' data-verdict='x", 1)
    text = text.replace("row.hidden = !ok;", "row.hidden = false;")
    text = text.replace("</body>", "<script>notDefined();</script></body>")
    (tmp_path / "index.html").write_text(text)
    problems = check_results_page(str(tmp_path / "index.html"))["problems"]
    assert any("headline verdict counts" in p for p in problems)
    assert any(p.startswith("filter verdict=refuted shows") for p in problems)
    assert any("notDefined" in p for p in problems)
