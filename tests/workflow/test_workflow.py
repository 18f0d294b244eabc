"""The Snakemake workflow as a subprocess: dry-run, lint, a bad config key, and a smoke run of the
whole pipeline in a temporary working directory (the repository is not written to)."""
from __future__ import annotations

import json

import pytest
from workflow_cli import REPO, snakemake

from replicate.claims import HEADLINE_IDS, load_claims

pytestmark = pytest.mark.workflow


def test_dry_run_plans_every_claim_and_figure(tmp_path):
    proc = snakemake("-n", "--cores", "1", "--directory", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    for rule in ("analytic_flops", "verify_all", "claims_report", "holitom_flops_table", "flops_vs_retention",
                 "holitom_flops_notebook", "analytic_exact_vs_paper"):
        assert rule in out, rule


def test_single_claim_target_uses_the_per_claim_rule(tmp_path):
    proc = snakemake("-n", "--cores", "1", "--directory", str(tmp_path),
                     "results/claims/holitom-flops-ov7b-r10.json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "verify_claim" in out and "verify_all" not in out
    # an analytic claim needs the analytic results only: no training, no cpu grid, no figures
    assert "analytic_flops" in out
    for heavy in ("cpu_train", "cpu_accuracy_cell", "cpu_efficiency", "holitom_tables"):
        assert heavy not in out, f"verifying one analytic claim would run {heavy}"


def test_figures_target_and_gpu_profile_plan(tmp_path):
    proc = snakemake("-n", "--cores", "1", "--directory", str(tmp_path), "figures")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "holitom_flops_table" in out and "claims_report" not in out
    proc = snakemake("-n", "--profile", str(REPO / "profiles" / "gpu"), "--directory", str(tmp_path))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]


def test_unknown_claim_id_has_no_rule(tmp_path):
    proc = snakemake("-n", "--cores", "1", "--directory", str(tmp_path), "results/claims/not-a-claim.json")
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    # the mistyped id is named, with the close claim ids (replicate/rules/claims_unknown.smk)
    assert "unknown claim id 'not-a-claim'" in out


def test_lint_is_clean(tmp_path):
    proc = snakemake("--lint", "--directory", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr


def test_bad_config_key_fails_naming_it(tmp_path):
    proc = snakemake("-n", "--cores", "1", "--directory", str(tmp_path), "--config", "gpus=true")
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "unknown config key(s) ['gpus']" in out and "allowed keys" in out


def test_smoke_run_of_the_whole_workflow(tmp_path):
    proc = snakemake("--profile", str(REPO / "profiles" / "smoke"), "--cores", "2", "--directory", str(tmp_path))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    claims_dir = tmp_path / "results" / "claims"
    for cid in HEADLINE_IDS:
        res = json.loads((claims_dir / f"{cid}.json").read_text())
        assert res["verdict"] in ("confirmed", "refuted", "not-run", "config-unpublished"), cid
        assert res["reason"], cid
        assert res["provenance"]["config_hash"]
    h1 = json.loads((claims_dir / "holitom-flops-ov7b-r10.json").read_text())
    assert h1["verdict"] == "confirmed" and h1["measured"] == pytest.approx(6.9, abs=0.19)
    assert h1["evidence"]["ratio_fraction"] == pytest.approx(0.069, abs=0.002)
    every = json.loads((claims_dir / "all.json").read_text())
    assert {r["id"] for r in every} == {c["id"] for c in load_claims()}
    assert all((claims_dir / f"{r['id']}.json").exists() for r in every)
    summary = json.loads((claims_dir / "summary.json").read_text())
    assert sum(summary["counts"].values()) == len(every)
    report = (claims_dir / "REPORT.md").read_text()
    assert "holitom-t1-flops-pdrop" in report.split("## Rows whose configuration the paper does not publish")[1]
    # smoke grid: one model only in the FLOPs grid figure, but every claim's setting is computed
    import pandas as pd

    flops = pd.read_csv(tmp_path / "results" / "analytic" / "flops.csv")
    assert {"llava-onevision-7b", "llava-onevision-72b", "llava-video-7b", "molmo2-4b"} <= set(flops["model"])
    for rel in ("tables/holitom_flops.md", "tables/holitom_flops.tex", "tables/holitom_flops.csv",
                "figures/flops_vs_retention.png", "figures/flops_vs_retention.pdf",
                "figures/notebook/holitom_flops.md", "claims/README_table.md", "analytic/exact_vs_paper.md"):
        assert (tmp_path / "results" / rel).stat().st_size > 0, rel
    assert (tmp_path / "logs" / "notebooks" / "holitom_flops.py.ipynb").exists()
    _check_run_summary(proc.stdout + proc.stderr, tmp_path)
    _check_results_page(tmp_path)
    _check_notebooks_under_nbconvert(tmp_path)
    _check_browsable_report(tmp_path)


def _check_run_summary(out, run_dir):
    """onsuccess: the verdicts per paper, the headline claims' verdicts and the results page's path."""
    summary = out.split("replicate: verdicts of this smoke run", 1)
    assert len(summary) == 2, out[-3000:]
    tail = summary[1]
    every = json.loads((run_dir / "results" / "claims" / "all.json").read_text())
    holitom = [r for r in every if r["paper"] == "holitom" and r.get("kind", "paper") == "paper"]
    assert f"  HoliTom: {len(holitom)} claims: " in tail
    assert "headline confirmed: holitom-flops-ov7b-r10" in tail
    assert f"results page: {run_dir / 'results' / 'index.html'}" in tail
    assert all(r["run"]["scale"] == "smoke" for r in every)
    assert (run_dir / "results" / "claims" / "REPORT.md").read_text().startswith("# Claims of a smoke run")


def _check_results_page(run_dir):
    """results/index.html: written by `all`; in headless Chromium (where installed) no console
    errors, the headline counts from the DOM equal the claim JSONs', the filters work."""
    from replicate.browsable import check_results_page, find_chromium

    page = run_dir / "results" / "index.html"
    assert "data-scale='smoke'" in page.read_text()
    if find_chromium() is None:
        return  # tests/replicate/test_results_page.py says why it skips
    out = check_results_page(str(page), screenshot=str(run_dir / "index.png"))
    assert out["problems"] == [] and out["scale"] == "smoke"


def _check_notebooks_under_nbconvert(run_dir):
    """Each notebook runs under plain `jupyter nbconvert --execute` (the kernel starts in the
    notebook's folder and finds the run directory above it) and shows its figures inline."""
    import shutil
    import subprocess
    import sys

    nb_dir = run_dir / "figures"
    nb_dir.mkdir(exist_ok=True)
    for nb in sorted((REPO / "figures").glob("*.ipynb")):
        shutil.copy(nb, nb_dir / nb.name)
        proc = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                               str(nb_dir / nb.name), "--output", f"executed-{nb.name}"],
                              capture_output=True, text=True, timeout=300, cwd=run_dir)
        assert proc.returncode == 0, (nb.name, proc.stderr[-3000:])
        executed = json.loads((nb_dir / f"executed-{nb.name}").read_text())
        images = [o for c in executed["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
        assert images, f"{nb.name} shows no figure inline"


def _check_browsable_report(run_dir):
    """`snakemake --report` on the finished smoke run: one self-contained HTML with a category per
    paper; rendered in headless Chromium when one is installed."""
    from replicate.browsable import CATEGORIES, find_chromium, render_check

    for category in CATEGORIES:
        assert (run_dir / "results" / "report" / category / "claims.html").stat().st_size > 0, category
    assert any((run_dir / "results" / "report" / "holitom" / "figures").iterdir())
    proc = snakemake("--profile", str(REPO / "profiles" / "smoke"), "--directory", str(run_dir),
                     "--report", str(run_dir / "results" / "report.html"))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    page = (run_dir / "results" / "report.html").read_text()
    assert len(page) > 100_000 and "holitom" in page and "synthvideoqa" in page
    if find_chromium() is None:
        return  # the HTML is checked above; rendering needs Chromium (apt-get install chromium)
    dom = render_check(str(run_dir / "results" / "report.html"), str(run_dir / "report.png"))
    assert all(c in dom for c in CATEGORIES), [c for c in CATEGORIES if c not in dom]
    assert (run_dir / "report.png").stat().st_size > 10_000
