"""HoliTom tables, sweeps and figures (replicate.holitom_tables, figures.holitom) on small fixtures."""
from __future__ import annotations

import csv
import json

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from replicate import holitom_tables as H
from replicate.claims import REPORTED_DIR

NOTEBOOK = "figures/holitom.py.ipynb"
PAPER_REASON = ("no checkpoint for llava-onevision-7b: config key paths.checkpoints.llava-onevision-7b is empty; "
                "no dataset for mvbench: config key paths.datasets.mvbench is empty")


def _rows(name):
    return list(csv.DictReader(open(REPORTED_DIR / f"{name}.csv")))


def _claims():
    """Claim results as replicate.verify writes them: FLOPs/ratio analytic, accuracy paper not-run."""
    out = {"holitom-t1-flops-holitom-r10": {"tier": "analytic", "verdict": "confirmed", "measured": 2.8153},
           "holitom-t1-ratio-holitom-r10": {"tier": "analytic", "verdict": "confirmed", "measured": 6.906},
           "holitom-t1-flops-vanilla": {"tier": "analytic", "verdict": "confirmed", "measured": 40.765},
           "holitom-t1-flops-pdrop": {"tier": "analytic", "verdict": "refuted", "measured": 18.03}}
    for b in H.BENCHES:
        out[f"holitom-t1-acc-holitom-r10-{b}"] = {"tier": "paper", "verdict": "not-run", "measured": None,
                                                  "reason": f"paper tier cannot run: {PAPER_REASON}"}
    return out


def _synth():
    return pd.DataFrame([
        {"method": "vanilla", "rtag": "full", "retention": float("nan"), "status": "ok", "accuracy": 0.68, "n": 1000},
        {"method": "holitom", "rtag": "r0.10", "retention": 0.10, "status": "ok", "accuracy": 0.51, "n": 1000}])


def test_claim_ids_follow_the_readme_scheme():
    row = {"model": "llava-onevision-7b", "method": "holitom", "pre_llm_pct": "10"}
    assert H.claim_id("t1", "flops", row) == "holitom-t1-flops-holitom-r10"
    assert H.claim_id("t1", "acc", row, "avg") == "holitom-t1-acc-holitom-r10-avg"
    fastv72 = {"model": "llava-onevision-72b", "method": "fastv", "pre_llm_pct": "100"}
    assert H.claim_id("t2", "acc", fastv72, "mvbench") == "holitom-t2-acc-ov72b-fastv-mvbench"


def test_main_table_puts_reported_beside_reproduced_with_tiers_and_not_run_text():
    frame = H.assemble_table(_rows("holitom_main"), _claims(), "t1", synth=_synth(), synth_reason="cpu tier: cell not in the cpu tier's grid")
    holi = frame[(frame["method"] == "holitom") & (frame["pre_llm_pct"] == "10")].iloc[0]
    assert float(holi["flops_reported"]) == 2.8 and holi["flops_reproduced"] == pytest.approx(2.8153)
    assert holi["flops_tier"] == "analytic" and holi["flops_verdict"] == "confirmed"
    assert float(holi["mvbench_reported"]) == 57.3
    assert holi["mvbench_reproduced"] == f"not-run (paper tier: {PAPER_REASON})" and holi["mvbench_tier"] == "paper"
    # SynthVideoQA block: the cpu tier ran holitom at 10 %; percent in accuracy points
    assert holi["synthvqa_accuracy"] == pytest.approx(51.0) and holi["synthvqa_tier"] == "cpu"
    van = frame[frame["method"] == "vanilla"].iloc[0]
    assert van["ratio_reproduced"] == 100.0 and van["ratio_tier"] == "definition"
    assert van["synthvqa_accuracy"] == pytest.approx(68.0)
    vz = frame[(frame["method"] == "visionzip") & (frame["pre_llm_pct"] == "25")].iloc[0]
    assert vz["synthvqa_accuracy"] == "not-run (cpu tier: cell not in the cpu tier's grid)"
    assert vz["flops_reproduced"] == "not-run (no claim for this cell)"
    fastvid = frame[frame["method"] == "fastvid"].iloc[0]  # the paper prints '–': nothing to reproduce
    assert fastvid["egoschema_reproduced"] == "" and fastvid["egoschema_tier"] == ""


def test_synth_frame_adds_cells_outside_the_grid_and_recomputes_perf_kept(tmp_path):
    acc = tmp_path / "accuracy.csv"
    _synth().to_csv(acc, index=False)
    extra = [{"method": "holitom", "rtag": "r0.15", "retention": 0.15, "status": "ok", "accuracy": 0.34, "n": 1000},
             {"method": "holitom", "rtag": "r0.10", "retention": 0.10, "status": "ok", "accuracy": 0.0, "n": 1}]
    f = H.synth_accuracy_frame(acc, extra)
    assert len(f) == 3  # the r0.10 duplicate of a grid cell is not added twice
    assert f.loc[f["rtag"] == "r0.15", "perf_kept_pct"].iloc[0] == pytest.approx(50.0)


def test_markdown_and_latex_name_the_tier_and_list_not_run_reasons(tmp_path):
    from figures.holitom import table_latex, table_markdown, write_table

    frame = H.assemble_table(_rows("holitom_main"), _claims(), "t1", synth=_synth())
    md = table_markdown(frame, "HoliTom main", synth=True)
    assert "not-run (paper tier) [" in md and PAPER_REASON in md.split("Not-run reasons:")[1]
    assert "SynthVideoQA" in md and "| 2.8 | 2.82 | analytic, confirmed |" in md
    tex = table_latex(frame, synth=True)
    assert tex.startswith(r"\begin{tabular}") and r"\bottomrule" in tex
    paths = write_table(frame, tmp_path / "holitom_main", "HoliTom main", synth=True)
    assert [p.suffix for p in paths] == [".csv", ".md", ".tex"] and all(p.stat().st_size for p in paths)


def test_cpu_cells_reuse_the_cpu_grid_and_name_the_rest_deterministically():
    h = H.settings({"holitom": {"k_sweep": [2, 18], "r_sweep": [0.3, 0.5], "merges": ["running-pairwise", "mean"],
                                "cpu": {"retentions": [0.10, 0.15]}}})
    emb = {"methods": ["vanilla", "holitom", "holitom-wo-m"], "retentions": [0.10, 0.25]}
    cells = H.cpu_cells(h, emb)
    paths = {(c.sweep, c.method, c.retention, c.k, c.r, c.merge): c.path for c in cells}
    assert paths[("retention", "holitom", 0.10, 18, 0.5, "running-pairwise")] == "results/cpu/accuracy/holitom/r0.10.json"
    assert paths[("retention", "holitom", 0.15, 18, 0.5, "running-pairwise")] == \
        "results/holitom/cpu/holitom/k18-R0.50-running-pairwise/r0.15.json"
    assert paths[("retention", "holitom-wo-m", 0.15, None, None, None)] == "results/holitom/cpu/holitom-wo-m/r0.15.json"
    assert paths[("k", "holitom", 0.10, 18, 0.5, "running-pairwise")] == "results/cpu/accuracy/holitom/r0.10.json"
    assert paths[("k", "holitom", 0.10, 2, 0.5, "running-pairwise")] == \
        "results/holitom/cpu/holitom/k2-R0.50-running-pairwise/r0.10.json"
    assert paths[("r", "holitom", 0.10, 14, 0.3, "running-pairwise")].endswith("k14-R0.30-running-pairwise/r0.10.json")
    assert paths[("merge", "holitom", 0.10, 18, 0.5, "mean")].endswith("k18-R0.50-mean/r0.10.json")
    # an option override of the cpu grid's holitom cells means they are not the same computation
    override = H.cpu_cells(h, {**emb, "options": {"holitom": {"tau": 0.9}}})
    assert all(not c.path.startswith("results/cpu/accuracy/holitom/") for c in override)


def test_cpu_sweep_table_records_paper_and_applied_k_tau_and_merge():
    cells = [H.CpuCell("k", "holitom", 0.10, 2, 0.5, "running-pairwise", "a.json"),
             H.CpuCell("merge", "holitom", 0.10, 18, 0.5, "mean", "b.json"),
             H.CpuCell("retention", "holitom-wo-m", 0.25, path="c.json")]
    res = {"a.json": {"status": "ok", "accuracy": 0.5, "n": 10, "llm_layers": 3,
                      "options": {"applied": {"inner_k": 1, "inner_r": 0.5, "merge": "running-pairwise"},
                                  "scaled": {"inner_k": [2, 1]}}},
           "b.json": {"status": "ok", "accuracy": 0.4, "n": 10,
                      "options": {"applied": {"inner_k": 2, "inner_r": 0.5, "merge": "mean"},
                                  "scaled": {"inner_k": [18, 2]}}},
           "c.json": {"status": "ok", "accuracy": 0.3, "n": 10, "options": {"applied": {"retention": 0.25}}}}
    t = H.cpu_sweep_table(cells, res)
    assert list(t["paper_k"][:2]) == [2, 18] and list(t["applied_k"][:2]) == [1, 2]
    assert list(t["tau"]) == [0.65, 0.65, 0.8]
    assert t["merge_label"][1].startswith("mean") and t["merge_label"][0] == "running-pairwise (official)"
    assert pd.isna(t["paper_k"][2]) and (t["tier"] == "cpu").all()


def test_analytic_sweeps_match_the_paper_flops_and_move_the_right_way():
    h = H.settings({"holitom": {"retentions": [0.10, 0.25], "k_sweep": [2, 14, 18], "r_sweep": [0.3, 0.7],
                                "frames": [16, 32]}})
    t = H.analytic_sweep_table(h)
    ret = t[t["sweep"] == "retention"]
    assert ret[ret["method"] == "vanilla"]["paper_tflops"].iloc[0] == pytest.approx(40.8, abs=0.05)
    holi10 = ret[(ret["method"] == "holitom") & (ret["retention"] == 0.10)].iloc[0]
    assert holi10["paper_tflops"] == pytest.approx(2.8, abs=0.05) and holi10["tau"] == 0.65
    assert ret[(ret["method"] == "holitom") & (ret["retention"] == 0.25)]["tau"].iloc[0] == 0.8
    k = t[t["sweep"] == "k"].sort_values("k")["paper_tflops"].tolist()
    assert k == sorted(k) and len(set(k)) == 3          # later merge layer -> more FLOPs
    r = t[t["sweep"] == "r"].sort_values("r")["paper_tflops"].tolist()
    assert r[0] > r[1]                                     # more merged away -> fewer FLOPs
    fr = t[(t["sweep"] == "frames") & (t["method"] == "holitom-wo-m")].sort_values("frames")
    assert list(fr["llm_visual_first"]) == [640, 1280]     # frames_retention 0.20: ceil(0.2 * 196) = 40 per frame
    assert fr["paper_tflops"].iloc[1] == pytest.approx(7.0, abs=0.05)  # = HoliTom (w/o M)'s 20 % row (docs/sources.md#holitom-main-table)


def test_frames_status_names_the_trained_frame_count(tmp_path):
    (tmp_path / "synthvqa.json").write_text(json.dumps({"frames": 8}))
    st = H.cpu_frames_status(tmp_path, [16, 32])
    assert st["status"] == "not-run" and st["frames_trained"] == 8 and "8-frame" in st["reason"]


@pytest.fixture
def figure_inputs(tmp_path):
    h = H.settings({"holitom": {"retentions": [0.10], "k_sweep": [2, 18], "r_sweep": [0.5], "frames": [16, 32]}})
    analytic = tmp_path / "sweeps.csv"
    H.analytic_sweep_table(h).to_csv(analytic, index=False)
    cpu = tmp_path / "cpu_sweeps.csv"
    pd.DataFrame([
        {"sweep": "k", "method": "holitom", "retention": 0.1, "paper_k": 2, "applied_k": 1, "r": 0.5,
         "merge": "running-pairwise", "merge_label": "running-pairwise (official)", "status": "ok", "accuracy": 0.5,
         "n": 10, "llm_layers": 3},
        {"sweep": "k", "method": "holitom", "retention": 0.1, "paper_k": 18, "applied_k": 2, "r": 0.5,
         "merge": "running-pairwise", "merge_label": "running-pairwise (official)", "status": "ok", "accuracy": 0.6,
         "n": 10, "llm_layers": 3},
        {"sweep": "r", "method": "holitom", "retention": 0.1, "paper_k": 14, "applied_k": 2, "r": 0.5,
         "merge": "running-pairwise", "merge_label": "running-pairwise (official)", "status": "ok", "accuracy": 0.6,
         "n": 10, "llm_layers": 3}]).to_csv(cpu, index=False)
    eff = tmp_path / "efficiency.csv"
    pd.DataFrame([{"method": m, "rtag": r, "status": "ok", "device": "cpu", "measured_vision_s": 0.07,
                   "measured_other_s": 0.002, "measured_llm_s": llm, "measured_decode_tokens_per_s": 50.0}
                  for m, r, llm in (("vanilla", "full", 0.23), ("holitom", "r0.10", 0.08))]).to_csv(eff, index=False)
    main = tmp_path / "holitom_main.csv"
    H.assemble_table(_rows("holitom_main"), _claims(), "t1", synth=_synth()).to_csv(main, index=False)
    return {"analytic": analytic, "cpu": cpu, "eff": eff, "main": main}


def test_figures_are_written_with_and_without_cpu_results(figure_inputs, tmp_path):
    from figures.holitom import write_figures

    out = write_figures(REPORTED_DIR, figure_inputs["analytic"], tmp_path / "a",
                        cpu_sweeps_csv=figure_inputs["cpu"], efficiency_csv=figure_inputs["eff"])
    assert sorted(p.name for p in out) == sorted(f"holitom_{n}.{e}" for n in ("ttft", "decode", "ksweep", "frames")
                                                 for e in ("png", "pdf"))
    assert all(p.stat().st_size > 1000 for p in out)
    bare = write_figures(REPORTED_DIR, figure_inputs["analytic"], tmp_path / "b", pdf=False)  # cpu tier not run
    assert len(bare) == 4 and all(p.suffix == ".png" for p in bare)


def test_cpu_bench_panel_is_labelled_as_cpu_never_as_the_paper_gpu(figure_inputs):
    from figures.holitom import CPU_LABEL, ttft_figure

    fig = ttft_figure(pd.read_csv(REPORTED_DIR / "holitom_ttft.csv"), pd.read_csv(figure_inputs["eff"]))
    titles = [ax.get_title() for ax in fig.axes]
    assert CPU_LABEL in titles[1] and "GPU" not in titles[1] and "paper" in titles[0]


def test_notebook_is_thin_and_runs_against_the_fixture(figure_inputs, tmp_path, repo_root):
    nb = nbformat.read(repo_root / NOTEBOOK, as_version=4)
    assert nb.metadata["language_info"]["name"] == "python"
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    out = tmp_path / "nb"
    injected = nbformat.v4.new_code_cell(
        f"main_csv = {str(figure_inputs['main'])!r}\nanalytic_csv = {str(figure_inputs['analytic'])!r}\n"
        f"cpu_sweeps_csv = {str(figure_inputs['cpu'])!r}\nreported_dir = {str(REPORTED_DIR)!r}\nout_dir = {str(out)!r}")
    nb.cells.insert(nb.cells.index(params[0]) + 1, injected)
    NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(repo_root)}}).execute()
    assert "| HoliTom |" in (out / "holitom_main.md").read_text()
    assert (out / "holitom_ksweep.png").stat().st_size > 1000
    assert "FLOPs cells confirmed" in nb.cells[-1].outputs[0]["text"]
