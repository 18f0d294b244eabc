"""Assets of the browsable report: categories per paper, claims pages, tables rendered to HTML."""
from __future__ import annotations

import json

import pytest

from replicate.browsable import CATEGORIES, assets_for, bundle, category_of, claims_html


@pytest.mark.parametrize("path,category", [
    ("results/figures/holitom_ttft.png", "holitom"),
    ("results/tables/holitom_main.md", "holitom"),
    ("results/figures/cpu_accuracy_vs_retention.png", "synthvideoqa"),
    ("results/figures/flops_vs_retention.png", "project"),
    ("results/analytic/exact_vs_paper.md", "project"),
    ("results/figures/tango_ttft.png", "tango"),
    ("results/figures/stts_speedup.png", "stts"),
])
def test_category_of(path, category):
    assert category_of(path) == category


def _results():
    base = {"quantity": "q", "tier": "analytic", "unit": "%", "reason": "r", "measured": 1.0, "reported": 1.0}
    return [{**base, "id": "h1", "paper": "holitom", "verdict": "confirmed",
             "predicted": {"value": 1.0, "unit": "%", "hardware": "a100-80g"}},
            {**base, "id": "syn", "paper": "holitom", "kind": "analogue", "verdict": "analogue", "reported": None},
            {**base, "id": "proj", "paper": "project", "kind": "project", "verdict": "refuted"}]


def test_claims_pages_keep_analogues_and_project_claims_apart():
    hol = claims_html(_results(), "holitom")
    assert ">h1<" in hol and ">syn<" not in hol and ">proj<" not in hol and "a100-80g" in hol
    syn = claims_html(_results(), "synthvideoqa")
    assert ">syn<" in syn and ">h1<" not in syn and "never compared" in syn
    assert ">proj<" in claims_html(_results(), "project")


def test_bundle_writes_claims_figures_and_tables(tmp_path):
    (tmp_path / "all.json").write_text(json.dumps(_results()))
    fig = tmp_path / "results" / "figures" / "holitom_ttft.png"
    fig.parent.mkdir(parents=True)
    fig.write_bytes(b"\x89PNG fake")
    table = tmp_path / "results" / "tables" / "holitom_main.md"
    table.parent.mkdir(parents=True)
    table.write_text("| a | b |\n|---|---|\n| 1 | 2 |\n")
    other = str(tmp_path / "results" / "figures" / "cpu_x.png")
    out = tmp_path / "results" / "report" / "holitom"
    n = bundle("holitom", all_json=str(tmp_path / "all.json"), files=[str(fig), str(table), other],
               claims_out=str(out / "claims.html"), figures_dir=str(out / "figures"), tables_dir=str(out / "tables"))
    assert n == {"figures": 1, "tables": 1}
    assert [p.name for p in (out / "figures").iterdir()][0].endswith("holitom_ttft.png")
    html = next((out / "tables").iterdir()).read_text()
    assert "<table>" in html and "<td>1</td>" in html
    with pytest.raises(ValueError, match="unknown report category 'nope'; allowed: holitom"):
        bundle("nope", all_json=str(tmp_path / "all.json"), files=[], claims_out="x", figures_dir="y", tables_dir="z")


def test_assets_split_figures_and_tables():
    got = assets_for("holitom", ["results/figures/holitom_a.png", "results/figures/holitom_a.pdf",
                                 "results/tables/holitom_main.md", "results/tables/holitom_main.tex"])
    assert got == {"figures": ["results/figures/holitom_a.png"], "tables": ["results/tables/holitom_main.md"]}
    assert set(CATEGORIES) == {"holitom", "tango", "stts", "project", "synthvideoqa"}
