"""REPORT.md / README snippet rendering and atomic writes."""
from __future__ import annotations

import pytest

from replicate import io
from replicate.report import counts, disagreements, render_readme_table, render_report


def _res(cid, verdict, measured=None, paper="holitom", reason="r"):
    return {"id": cid, "paper": paper, "quantity": "flops_ratio", "reported": 6.9, "measured": measured,
            "unit": "%", "verdict": verdict, "reason": reason, "tier": "analytic", "setting": {"note": "why"}}


def test_report_counts_and_rows():
    results = [_res("a", "confirmed", 6.91), _res("b", "refuted", 9.0), _res("c", "not-run", reason="no GPU"),
               _res("d", "not-run", reason="no GPU", paper="stts")]
    assert counts(results) == {"confirmed": 1, "refuted": 1, "not-run": 2}
    text = render_report(results, headline=["a"])
    assert "4 claims of the papers: 1 confirmed, 1 refuted, 2 not-run." in text
    assert "| a | holitom | flops_ratio | 6.9 % | 6.91 % | — | confirmed | r |" in text
    assert "- `b`: reported 6.9 %, measured 9 % (r). why" in text
    assert "- 2 x no GPU" in text
    assert text.count("| a | holitom |") == 2  # headline table + all claims


def test_readme_table_lists_headline_in_order_with_predicted():
    pred = {"value": 3.41, "unit": "x", "hardware": "a100-80g"}
    results = [_res("a", "confirmed", 6.91), {**_res("b", "not-run"), "predicted": pred}]
    text = render_readme_table(results, ["b", "a"])
    lines = [l for l in text.splitlines() if l.startswith("| `")]
    assert lines[0] == "| `b` | holitom | 6.9 % | — | 3.41 x (a100-80g) | not-run |"
    assert lines[1] == "| `a` | holitom | 6.9 % | 6.91 % | — | confirmed |"


def test_analogues_and_project_claims_have_their_own_tables_and_no_paper_number():
    analogue = {**_res("syn", "analogue", 51.1), "kind": "analogue", "reported": None, "analogue_of": "H2",
                "paper_value_context": 99.1, "setting": {"model": "synthvqa-tiny-llava-ov", "method": "holitom",
                                                         "retention": 0.1, "frames": 8, "note": "tiny"}}
    project = {**_res("proj", "confirmed", 0.96), "kind": "project", "paper": "project", "reported": 1.0, "unit": "x"}
    results = [_res("a", "confirmed", 6.91), analogue, project]
    readme = render_readme_table(results, ["a", "syn", "proj"], ["proj"], ["syn"])
    head = readme.split("This project's own claims")[0]
    assert "`syn`" not in head and "`proj`" not in head  # neither sits in the papers' headline table
    assert "99.1" not in readme  # the paper's number is never printed beside the analogue
    assert "| `syn` | holitom H2 | synthvqa-tiny-llava-ov, holitom at 0.1, 8 frames | 51.1 % | analogue | tiny |" in readme
    report = render_report(results, headline=["a"])
    assert "1 claims of the papers: 1 confirmed." in report
    assert "## Claims of this project" in report and "## SynthVideoQA / CPU analogues" in report


def test_disagreement_section_lists_predictions_outside_the_band_with_the_reason():
    rep = {**_res("ttft", "not-run"), "quantity": "ttft_speedup", "reported": 2.28, "unit": "x", "tier": "gpu",
           "tolerance": {"rel": 0.15, "rationale": "r"},
           "predicted": {"value": 3.41, "unit": "x", "hardware": "a100-80g", "amdahl_ttft_bound": 4.48},
           "evidence": {"analytic_prediction": {"vision_ms": 131.7, "other_ms": 8.5, "llm_ms": 44.1}}}
    dec = {**rep, "id": "dec", "quantity": "decode_speedup", "reported": 1.32,
           "predicted": {"value": 1.02, "unit": "x", "hardware": "a100-80g"}}
    close = {**rep, "id": "close", "predicted": {"value": 2.3, "unit": "x", "hardware": "a100-80g"}}
    parts = [{**_res(f"holitom-f-ttft-{p}-vanilla", "not-run"), "reported": v, "unit": "ms"}
             for p, v in (("vit", 500.0), ("other", 45.0), ("llm", 1142.0))]
    text = "\n".join(disagreements([rep, dec, close, *parts]))
    assert "`ttft`: reported 2.28 x, predicted 3.41 x (a100-80g)" in text and "Amdahl bound" in text
    assert "bounds any LLM-side method at 3.10x" in text  # (500 + 45 + 1142) / (500 + 45)
    assert "`dec`" in text and "weight-bandwidth bound" in text and "24 %" in text  # 1 - 1/1.32
    assert "`close`" not in text  # 2.3 is inside 2.28 +- 15 %


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out" / "x.json"
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert not target.exists() and list(target.parent.iterdir()) == []
    io.write_json(target, {"a": 1})
    assert target.read_text() == '{\n  "a": 1\n}\n' and len(list(target.parent.iterdir())) == 1


def test_every_result_writer_is_the_one_atomic_helper_with_the_umask_mode(tmp_path):
    """JSON, JSON lines (paper-tier shards), CSV and text all go through figures.files.atomic_path:
    ordinary permissions from the umask (not mkstemp's 0600), nothing left behind."""
    import os

    import pandas as pd

    old = os.umask(0o027)
    try:
        paths = [io.write_json(tmp_path / "a.json", {"x": 1}), io.write_jsonl(tmp_path / "s.jsonl", [{"k": 1}, {"k": 2}]),
                 io.write_csv(tmp_path / "c.csv", pd.DataFrame({"a": [1]})), io.write_text(tmp_path / "t.md", "x")]
    finally:
        os.umask(old)
    assert all((p.stat().st_mode & 0o777) == 0o640 for p in paths)
    assert (tmp_path / "s.jsonl").read_text() == '{"k": 1}\n{"k": 2}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "c.csv", "s.jsonl", "t.md"]


def test_splice_readme_replaces_only_the_generated_tables():
    from replicate.report import splice_readme

    readme = "intro\n<!-- claims-table:start -->\nRun facts.\n\n| old |\n|---|\n\nold line\n<!-- claims-table:end -->\nrest\n"
    out = splice_readme(readme, "| new |\n|---|\n\nAll 3 claims.\n")
    assert out == "intro\n<!-- claims-table:start -->\nRun facts.\n\n| new |\n|---|\n\nAll 3 claims.\n<!-- claims-table:end -->\nrest\n"
    with pytest.raises(ValueError, match="claims-table:start"):
        splice_readme("no markers", "| x |")
