"""figures.tables / figures.plots and the thin notebook, on a tiny results fixture."""
from __future__ import annotations

import json

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from figures.plots import flops_vs_retention, write_flops_vs_retention
from figures.tables import holitom_flops_table, to_latex, write_holitom_flops_table
from replicate.analytic import Setting, compute_rows, flops_frame

NOTEBOOK = "figures/holitom_flops.py.ipynb"


def _result(cid, verdict, reported, measured, **setting):
    return {"id": cid, "verdict": verdict, "reported": reported, "measured": measured, "setting": setting}


@pytest.fixture
def results_fixture(tmp_path):
    res = [
        _result("holitom-t1-flops-vanilla", "confirmed", 40.8, 40.77, model="llava-onevision-7b", method="vanilla"),
        _result("holitom-t1-flops-holitom-r10", "confirmed", 2.8, 2.815, model="llava-onevision-7b",
                method="holitom", retention=0.1),
        _result("holitom-t1-ratio-holitom-r10", "confirmed", 6.9, 6.906, model="llava-onevision-7b",
                method="holitom", retention=0.1),
        _result("holitom-t1-flops-pdrop", "config-unpublished", 10.5, 18.03, model="llava-onevision-7b",
                method="pdrop", note="stage config unknown"),
        _result("holitom-t1-ratio-pdrop", "config-unpublished", 25.7, 44.2, model="llava-onevision-7b", method="pdrop"),
        _result("holitom-t1-acc-holitom-r10-avg", "not-run", 57.9, None, model="llava-onevision-7b"),
    ]
    claims = tmp_path / "all.json"
    claims.write_text(json.dumps(res))
    rows, _ = compute_rows([Setting("llava-onevision-7b", m, 32, r, o) for m, o in
                            (("visionzip", ()), ("holitom", (("k", 18), ("r", 0.5))))
                            for r in (0.1, 0.25)])
    flops = tmp_path / "flops.csv"
    flops_frame(rows).to_csv(flops, index=False)
    return claims, flops


def test_flops_table_pairs_flops_and_ratio_rows(results_fixture):
    claims, _ = results_fixture
    table = holitom_flops_table(json.loads(claims.read_text()))
    assert list(table["method"]) == ["vanilla", "holitom", "pdrop"]  # accuracy claims are not rows
    hol = table[table["method"] == "holitom"].iloc[0]
    assert (hol["reported_tflops"], hol["reproduced_tflops"], hol["reported_ratio_pct"], hol["match"]) == \
        (2.8, 2.81, 6.9, "yes")
    assert hol["pre_llm"] == "10 %"
    pdrop = table[table["method"] == "pdrop"].iloc[0]
    assert pdrop["match"] == "config unpublished" and pdrop["note"] == "stage config unknown"
    assert r"\begin{tabular}" in to_latex(table) and "6.9" in to_latex(table)


def test_writers_produce_all_formats(results_fixture, tmp_path):
    claims, flops = results_fixture
    out = tmp_path / "out"
    write_holitom_flops_table(claims, md=out / "t.md", tex=out / "t.tex", csv=out / "t.csv")
    assert pd.read_csv(out / "t.csv").shape[0] == 3
    write_flops_vs_retention(flops, png=str(out / "f.png"), pdf=str(out / "f.pdf"))
    assert (out / "f.png").read_bytes()[:4] == b"\x89PNG" and (out / "f.pdf").read_bytes()[:4] == b"%PDF"


def test_plot_has_one_line_per_method_plus_vanilla(results_fixture):
    _, flops = results_fixture
    fig = flops_vs_retention(pd.read_csv(flops), ["llava-onevision-7b"], ["visionzip", "holitom"])
    ax = fig.axes[0]
    assert [l.get_label() for l in ax.get_lines()] == ["visionzip", "holitom", "vanilla"]
    assert list(ax.get_lines()[0].get_xdata()) == [10.0, 25.0]


def test_notebook_is_thin_and_runs_against_the_fixture(results_fixture, tmp_path, repo_root):
    claims, flops = results_fixture
    nb = nbformat.read(repo_root / NOTEBOOK, as_version=4)
    assert nb.metadata["language_info"]["name"] == "python"
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    out = tmp_path / "nb"
    injected = nbformat.v4.new_code_cell(f"claims_json = {str(claims)!r}\nflops_csv = {str(flops)!r}\n"
                                         f"out_dir = {str(out)!r}")
    nb.cells.insert(nb.cells.index(params[0]) + 1, injected)
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(repo_root)}}).execute()
    assert "| holitom " in (out / "holitom_flops.md").read_text()
    assert (out / "flops_vs_retention.png").exists()
    assert "3 table rows; 2 match" in nb.cells[-1].outputs[0]["text"]
