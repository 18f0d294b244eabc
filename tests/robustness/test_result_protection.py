"""Class 6 of issue 27: finished results are protected.

Every result the verdicts read is written with a content digest (``<file>.sha256``) that every
reader checks: a hand-edited, truncated or overwritten one is refused naming the file and the rule
that rebuilds it. Outputs under results/ are kept while their job reruns and restored (mtime and
digest too) when it fails, so an interrupted or failed job never leaves fewer results; a missing
cell is rebuilt because the verify rules declare it. The workflow cases run the smoke profile on
one analytic claim, hash results/ before and after, and send a real SIGTERM to a running job.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from replicate import io
from replicate.io import ResultDigestError, read_csv, read_json, verify_result, write_csv, write_json

from .helpers import REPO, env, snakemake, tree_files, tree_hash

CLAIM = "holitom-flops-ov7b-r10"
TARGET = f"results/claims/{CLAIM}.json"


# ---------------------------------------------------------------------------------- the digest
def test_a_result_is_written_with_its_digest_in_sha256sum_format(tmp_path):
    path = write_json(tmp_path / "cell.json", {"accuracy": 0.5})
    side = tmp_path / "cell.json.sha256"
    assert side.read_text().endswith("  cell.json\n") and read_json(path) == {"accuracy": 0.5}
    if shutil.which("sha256sum"):
        assert subprocess.run(["sha256sum", "-c", side.name], cwd=tmp_path, capture_output=True).returncode == 0


@pytest.mark.parametrize("damage", ["edit", "truncate", "garbage", "empty", "append"])
def test_a_damaged_json_result_is_refused_naming_file_and_rule(tmp_path, monkeypatch, damage):
    monkeypatch.setenv(io.RULES_ENV, json.dumps({"cpu_accuracy_cell": [r".*/cpu/accuracy/[^/]+/[^/]+\.json$"]}))
    path = write_json(tmp_path / "cpu" / "accuracy" / "tango" / "r0.10.json", {"accuracy": 0.289, "n": 1000})
    text = path.read_text()
    path.write_text({"edit": text.replace("0.289", "0.99"), "truncate": text[:10], "garbage": "not json",
                     "empty": "", "append": text + " "}[damage])
    with pytest.raises(ResultDigestError, match=rf"{path}.*does not match the content digest.*rule cpu_accuracy_cell "
                                                rf"rebuilds it: snakemake --cores all --forcerun {path}"):
        read_json(path)


def test_a_damaged_csv_result_is_refused(tmp_path):
    import pandas as pd

    path = write_csv(tmp_path / "accuracy.csv", pd.DataFrame({"method": ["tango"], "accuracy": [0.289]}))
    assert read_csv(path)["accuracy"].tolist() == [0.289]
    path.write_text(path.read_text().replace("0.289", "0.99"))
    with pytest.raises(ResultDigestError, match="accuracy.csv"):
        read_csv(path)


def test_a_result_without_a_digest_is_read_and_a_missing_one_named(tmp_path):
    (tmp_path / "hand.json").write_text('{"a": 1}')
    assert read_json(tmp_path / "hand.json") == {"a": 1}  # written by hand or before digests: read as it is
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(ResultDigestError, match="bad.json' is not readable JSON"):
        read_json(tmp_path / "bad.json")
    with pytest.raises(ResultDigestError, match="nothere.json' is missing"):
        verify_result(tmp_path / "nothere.json")


# ---------------------------------------------------------------------------------- the readers
def test_the_cpu_table_refuses_an_edited_cell(tmp_path):
    from replicate.harness.tables import read_cells

    cell = write_json(tmp_path / "r0.10.json", {"method": "tango", "rtag": "r0.10", "status": "ok", "accuracy": 0.289})
    cell.write_text(cell.read_text().replace("0.289", "0.99"))
    with pytest.raises(ResultDigestError, match="r0.10.json"):
        read_cells([cell])


def test_an_evaluator_reading_an_edited_table_stops_the_verify_job(tmp_path):
    """The issue's case: a cell edited to 0.99 flowed into tango-perf-kept-synth-r10 (100.0 -> 198.0)."""
    import pandas as pd

    from replicate.claims import load_claims
    from replicate.configuration import load_config
    from replicate.verify import verify_claim

    claim = next(c for c in load_claims() if c.get("evaluator") == "cpu_perf_kept")
    csv = write_csv(tmp_path / "results" / "cpu" / "accuracy.csv",
                    pd.DataFrame({"method": ["vanilla"], "rtag": ["full"], "accuracy": [1.0]}))
    csv.write_text(csv.read_text().replace("1.0", "9.9"))
    with pytest.raises(ResultDigestError, match="accuracy.csv"):
        verify_claim(claim, results_dir=tmp_path, config=load_config(), cuda=False)


def test_an_evaluator_may_read_only_the_verify_rules_inputs(tmp_path):
    from replicate.evaluator_base import Context, UndeclaredResult

    write_json(tmp_path / "results" / "x.json", {"a": 1})
    ctx = Context(tmp_path, {}, declared=frozenset({"results/y.json"}))
    with pytest.raises(UndeclaredResult, match="'results/x.json', which is not an input of the verify rule"):
        ctx.json("results/x.json")
    assert Context(tmp_path, {}, declared=frozenset({"results/x.json"})).json("results/x.json") == {"a": 1}


def test_the_claims_report_refuses_a_claim_file_that_differs_from_all_json(tmp_path):
    from replicate.rulelib import claims_report

    claims = [{"id": "a", "verdict": "confirmed"}, {"id": "b", "verdict": "refuted"}]
    write_json(tmp_path / "all.json", claims)
    for c in claims:
        write_json(tmp_path / f"{c['id']}.json", c)
    write_json(tmp_path / "b.json", {"id": "b", "verdict": "confirmed"})  # rewritten with a fresh digest
    with pytest.raises(ResultDigestError, match=r"b\.json' differs from its entry in .*all\.json; rule verify_all"):
        claims_report(str(tmp_path / "all.json"), claim_files=[str(tmp_path / "a.json"), str(tmp_path / "b.json")],
                      report=str(tmp_path / "R.md"), summary=str(tmp_path / "s.json"), readme=str(tmp_path / "t.md"),
                      headline=[])
    assert not (tmp_path / "R.md").exists()


def _edited_all_json(tmp_path: Path) -> Path:
    """A run's all.json written with its digest, then edited by hand (a verdict flipped)."""
    path = write_json(tmp_path / "results" / "claims" / "all.json", [{"id": "a", "verdict": "refuted"}])
    path.write_text(json.dumps([{"id": "a", "verdict": "confirmed"}]))
    return path


def test_the_results_page_refuses_an_edited_all_json(tmp_path):
    from replicate.results_page import write_page

    all_json = _edited_all_json(tmp_path)
    with pytest.raises(ResultDigestError, match=r"all\.json' does not match the content digest"):
        write_page(str(all_json), str(tmp_path / "index.html"), headline=[])
    assert not (tmp_path / "index.html").exists()


def test_the_report_bundle_refuses_an_edited_all_json(tmp_path):
    from replicate.browsable import bundle

    all_json = _edited_all_json(tmp_path)
    with pytest.raises(ResultDigestError, match=r"all\.json' does not match"):
        bundle("holitom", all_json=str(all_json), files=[], claims_out=str(tmp_path / "c.html"),
               figures_dir=str(tmp_path / "f"), tables_dir=str(tmp_path / "t"))
    assert not (tmp_path / "c.html").exists()


def test_the_readme_refresher_refuses_an_edited_all_json_and_leaves_the_readme(tmp_path, capsys):
    from replicate.report import README_END, README_START, main

    all_json = _edited_all_json(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{README_START}\nold\n{README_END}\n")
    before = readme.read_text()
    assert main([str(readme), str(all_json)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "all.json' does not match the content digest" in err
    assert readme.read_text() == before


def test_the_run_summary_and_the_report_check_say_so_instead_of_raising(tmp_path):
    from replicate.run_summary import success_lines
    from replicate.scale import report_mismatch

    all_json = _edited_all_json(tmp_path)
    lines = success_lines(tmp_path, headline=[])
    assert len(lines) == 1 and "does not match the content digest" in lines[0]
    assert "does not match the content digest" in report_mismatch({}, str(all_json))


def test_tables_built_from_results_refuse_an_edited_input(tmp_path):
    """The tables beside the verdicts read their inputs through the same check: the analytic tier's
    exact-vs-paper table and HoliTom's SynthVideoQA rows."""
    import pandas as pd

    from replicate.holitom_tables import synth_accuracy_frame
    from replicate.rulelib import exact_vs_paper

    flops = write_csv(tmp_path / "flops.csv", pd.DataFrame({"model": ["m"], "tflops": [1.0]}))
    flops.write_text(flops.read_text().replace("1.0", "9.0"))
    with pytest.raises(ResultDigestError, match=r"flops\.csv' does not match"):
        exact_vs_paper(str(flops), csv_path=str(tmp_path / "e.csv"), md_path=str(tmp_path / "e.md"))
    assert not (tmp_path / "e.csv").exists()
    acc = write_csv(tmp_path / "accuracy.csv", pd.DataFrame({"method": ["vanilla"], "rtag": ["full"],
                                                            "accuracy": [0.5]}))
    acc.write_text(acc.read_text().replace("0.5", "0.99"))
    with pytest.raises(ResultDigestError, match=r"accuracy\.csv' does not match"):
        synth_accuracy_frame(str(acc))


def test_a_figure_scripts_inputs_are_checked_before_the_figures_read_them(tmp_path):
    """figures/ reads CSVs as they are (it sits below replicate/); the rule scripts call
    io.verify_inputs on snakemake.input first: nested lists, folders and files without a digest pass."""
    from replicate.io import verify_inputs

    good = write_json(tmp_path / "a.json", {"x": 1})
    plain = tmp_path / "hand.csv"
    plain.write_text("a\n1\n")
    edited = write_json(tmp_path / "b.json", {"x": 2})
    assert verify_inputs([str(good), [str(plain), str(tmp_path)]]) == [good, plain]
    edited.write_text('{"x": 3}')
    with pytest.raises(ResultDigestError, match=r"b\.json' does not match"):
        verify_inputs([str(good), [str(edited)]])
    scripts = ["cpu_figures", "cpu_layouts_figure", "flops_vs_retention", "holitom_figures", "holitom_flops_table",
               "tango_figures"]
    assert all("verify_inputs(s" in (REPO / "replicate" / "scripts" / f"{n}.py").read_text() for n in scripts)


def test_the_paper_summary_refuses_an_edited_shard(tmp_path):
    from replicate.paper.cells import Cell
    from replicate.io import write_jsonl as write_jsonl_atomic
    from replicate.paper.shard import summarise_cell

    cell = Cell(checkpoint="ck", model="llava-onevision-7b", frames=8, method="vanilla", retention=None, options=(),
                dataset="videomme", benchmark="videomme")
    shard = write_jsonl_atomic(tmp_path / "shard-000-of-001.jsonl",
                               [{"kind": "shard", "status": "ok", "n_benchmark": 1},
                                {"kind": "sample", "sample_id": "q1", "correct": False, "pred_index": 1}])
    shard.write_text(shard.read_text().replace('"correct": false', '"correct": true'))
    with pytest.raises(ResultDigestError, match="shard-000-of-001.jsonl"):
        summarise_cell(cell, [shard])


# ---------------------------------------------------------------------------------- keeping outputs
class _File(str):
    def __new__(cls, value, flags=None):
        obj = super().__new__(cls, value)
        obj.flags = dict(flags or {})
        return obj

    def set_flags(self, flags):
        self.flags = flags


class _Rule:
    def __init__(self, name, *outputs):
        self.name, self.output = name, list(outputs)


def test_outputs_under_results_are_flagged_update_and_no_others():
    from replicate.workflow_guard import keep_previous_outputs

    cell, log, folder = _File("results/cpu/a.json"), _File("logs/x.log"), _File("results/report/x", {"directory": True})
    touched = keep_previous_outputs([_Rule("r", cell, log, folder)])
    assert touched == ["r"] and cell.flags == {"update": True} and log.flags == {} and "update" not in folder.flags


def test_a_restored_output_keeps_its_mtime_and_digest(tmp_path):
    """Snakemake's own restore gave the output a new mtime, so the next run skipped the failed job."""
    from snakemake.persistence import FileBackupMixin

    from replicate.workflow_guard import patch_backups

    assert patch_backups()

    class Store(FileBackupMixin):
        path = tmp_path / ".snakemake"

    out = write_json(tmp_path / "results" / "accuracy.json", {"accuracy": 0.5})
    os.utime(out, (1_000_000_000, 1_000_000_000))
    old_bytes, old_side = out.read_bytes(), (tmp_path / "results" / "accuracy.json.sha256").read_text()
    Store().backup_output(out)
    write_json(out, {"accuracy": "half written"})  # the failing job's new file and digest
    assert Store().restore_output(out)
    assert out.read_bytes() == old_bytes and out.stat().st_mtime == 1_000_000_000
    assert (tmp_path / "results" / "accuracy.json.sha256").read_text() == old_side and read_json(out)["accuracy"] == 0.5


def test_the_rule_of_a_result_is_found_from_the_published_outputs(monkeypatch):
    from replicate.io import rule_for

    monkeypatch.setenv(io.RULES_ENV, json.dumps({"verify_all": [r"results/claims/all\.json$"],
                                                 "analytic_flops": [r"results/analytic/flops\.csv$"]}))
    assert rule_for("results/analytic/flops.csv") == "analytic_flops" and rule_for("results/other.csv") is None


def test_the_claim_files_are_checked_before_a_run_unless_forced(tmp_path, monkeypatch):
    from replicate.workflow_guard import check_sealed

    monkeypatch.chdir(tmp_path)
    claim = write_json(Path("results/claims/x.json"), {"id": "x"})
    check_sealed("results/claims")
    claim.write_text("garbage")
    with pytest.raises(ResultDigestError, match=r"x\.json.*rm results/claims/x\.json results/claims/x\.json\.sha256"):
        check_sealed("results/claims")
    check_sealed("results/claims", forced={"results/claims/x.json"})


# ---------------------------------------------------------------------------------- the smoke workflow
def _smoke(workdir: Path, *args, timeout=900):
    return snakemake("--profile", str(REPO / "profiles" / "smoke"), "--cores", "2", "--directory", str(workdir),
                     *args, timeout=timeout)


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    """The smoke profile's run of one analytic claim (analytic_flops, analytic_predictions, the claim)."""
    work = tmp_path_factory.mktemp("smoke") / "work"
    proc = _smoke(work, TARGET)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return work


@pytest.fixture
def work(base_run, tmp_path) -> Path:
    """A private copy of the finished run (results, logs and Snakemake's metadata; mtimes kept)."""
    return Path(shutil.copytree(base_run, tmp_path / "work", symlinks=True))


def _job_pids(*needles: str, deadline: float) -> list[int]:
    """Pids of the processes whose command line holds every needle (the job Snakemake started)."""
    while time.time() < deadline:
        found = []
        for d in Path("/proc").iterdir():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, ValueError):
                continue
            if d.name.isdigit() and all(n in cmd for n in needles):
                found.append(int(d.name))
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no process with {needles}")


@pytest.mark.workflow
def test_sigterm_while_a_job_reruns_loses_no_result(work):
    """analytic_flops reruns (one of its outputs is gone); Snakemake and the job get SIGTERM mid-run:
    its other output, which Snakemake used to delete before the job started (measured at ab7bbe8:
    flops.csv gone), and the claim are still there, unchanged (a file the job completed before the
    signal may be new; it is whole and matches its digest)."""
    for f in ("flops.json", "flops.json.sha256"):
        (work / "results" / "analytic" / f).unlink()
    before = tree_files(work / "results")
    log = work.parent / "run.log"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--profile", str(REPO / "profiles" / "smoke"),
           "--cores", "2", "--directory", str(work), "results/analytic/flops.json"]
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env(), stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 300
        while "rule analytic_flops" not in log.read_text() and proc.poll() is None:
            assert time.time() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        jobs = _job_pids(f"{work}/.snakemake/scripts", "analytic_flops", deadline=deadline)
        assert proc.poll() is None, "the job finished before the SIGTERM; " + log.read_text()[-2000:]
        for pid in jobs:  # the running job (Snakemake alone would let it finish) and Snakemake
            os.kill(pid, signal.SIGTERM)
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0, log.read_text()[-2000:]
    after = tree_files(work / "results")
    lost = {k: (v, after.get(k)) for k, v in before.items() if after.get(k) != v}
    assert not lost, ("an interrupted job removed or changed a finished result", lost)
    for new in set(after) - set(before):  # what the job finished before the signal is whole
        if not new.endswith(".sha256"):
            verify_result(work / "results" / new)
    verify_result(work / "results" / "analytic" / "flops.csv")
    verify_result(work / TARGET)


@pytest.mark.workflow
def test_a_hand_edited_result_is_refused_and_the_claim_kept(work):
    flops = work / "results" / "analytic" / "flops.csv"
    lines = flops.read_text().splitlines()
    lines[1] = lines[1].replace(",", ",9", 1)  # one number changed by hand
    flops.write_text("\n".join(lines) + "\n")
    before = tree_hash(work / "results")
    for attempt in range(2):  # refused again on the next run: the restored claim kept its old mtime
        proc = _smoke(work, TARGET)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0, (attempt, out[-3000:])
        assert "results/analytic/flops.csv" in out and "rule analytic_flops rebuilds it" in out, (attempt, out[-3000:])
        assert tree_hash(work / "results") == before, "the previous claim was lost or changed"


@pytest.mark.workflow
def test_a_claim_file_overwritten_with_garbage_is_refused_before_anything_runs(work):
    (work / TARGET).write_text("garbage")
    before = tree_hash(work / "results")
    proc = _smoke(work, "-n", TARGET)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and TARGET in out and "does not match the content digest" in out, out[-3000:]
    assert "rebuilds it" in out and tree_hash(work / "results") == before
    assert f"rm {TARGET} {TARGET}.sha256" in out
    (work / TARGET).unlink()
    (work / f"{TARGET}.sha256").unlink()
    proc = _smoke(work, TARGET)  # the named remedy: the claim is rebuilt
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert read_json(work / TARGET)["id"] == CLAIM


@pytest.mark.workflow
def test_the_cells_behind_the_tables_are_inputs_of_the_verify_rule(tmp_path):
    """A deleted cell JSON used to stay missing while the tables after it were up to date: the
    verify rule now declares the cells (and every file an evaluator reads)."""
    proc = _smoke(tmp_path / "plan", "-n", "--printshellcmds", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    verify = proc.stdout.split("rule verify_all:", 1)[1].split("\n\n", 1)[0]
    for cell in ("results/cpu/accuracy/tango/r0.10.json", "results/cpu/accuracy/vanilla/full.json",
                 "results/cpu/video/accuracy/tango/r0.10.json", "results/cpu/efficiency/holitom/r0.10.json"):
        assert cell in verify, (cell, verify[:2000])
