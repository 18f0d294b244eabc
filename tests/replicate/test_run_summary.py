"""What a run prints at its end (the Snakefile's onsuccess / onerror)."""
from __future__ import annotations

import json
import os

from replicate.claims import HEADLINE_IDS, load_claims
from replicate.configuration import load_config
from replicate.run_summary import error_lines, failed_rules, success_lines, undecided

# the shape of Snakemake 9's error block (copied from a real failed run's log)
FAILED_LOG = """[Sun Dec  6 23:27:26 2026]
Error in rule cpu_train:
    message: None
    jobid: 9
    input: results/cpu/data.json
    output: results/cpu/model/config.json, results/cpu/model/metrics.json
    log: logs/cpu/train.log (check log file(s) for error details)
    shell:
        python -m replicate.synthvqa.train --out results/cpu/model
        (command exited with non-zero exit code)
Shutting down, this might take some time.
Exiting because a job execution failed. Look above for error messages
"""


def _claim(cid, paper, verdict):
    return {"id": cid, "paper": paper, "kind": "paper", "verdict": verdict,
            "run": {"scale": "smoke", "default": False, "differs": ["cpu.train"]},
            "provenance": {"commit": "0123456789abcdef"}}


def test_success_lines_count_verdicts_and_name_headline_claims_and_the_page(tmp_path):
    claims = tmp_path / "results" / "claims"
    claims.mkdir(parents=True)
    results = [_claim("holitom-flops-ov7b-r10", "holitom", "confirmed"),
               _claim("holitom-outer-reduction-r10", "holitom", "refuted"),
               _claim("holitom-t1-flops-vanilla", "holitom", "confirmed"),
               _claim("stts-efficiency-128f", "stts", "not-run")]
    (claims / "all.json").write_text(json.dumps(results))
    (tmp_path / "results" / "index.html").write_text("<html>")
    lines = success_lines(tmp_path, HEADLINE_IDS)
    assert lines[0] == "replicate: verdicts of this smoke run (commit 0123456789)"
    assert "  HoliTom: 3 claims: 2 confirmed, 1 refuted" in lines
    assert "    headline confirmed: holitom-flops-ov7b-r10" in lines
    assert "    headline refuted: holitom-outer-reduction-r10" in lines
    assert "    headline not-run: stts-efficiency-128f" in lines
    assert any(l.startswith("  results page: ") and l.endswith("index.html (open it in a browser; no network needed)")
               for l in lines)
    # a run that verified nothing (its log started after all.json was written) prints nothing
    os.utime(claims / "all.json", (1e9, 1e9))
    assert success_lines(tmp_path, HEADLINE_IDS, log=".snakemake/log/2026-01-01T120000.000001.snakemake.log") == []
    # Snakemake 9 hands the handlers a list of log files
    assert success_lines(tmp_path, HEADLINE_IDS, log=[".snakemake/log/2026-01-01T120000.000001.snakemake.log"]) == []


def test_failed_rules_from_a_snakemake_log():
    assert failed_rules(FAILED_LOG) == [{"rule": "cpu_train", "output": "results/cpu/model/config.json, "
                                         "results/cpu/model/metrics.json", "log": "logs/cpu/train.log"}]


def test_error_lines_name_the_failed_rule_and_the_claims_it_left_undecided(tmp_path):
    log = tmp_path / "run.log"
    log.write_text(FAILED_LOG)
    config = load_config()
    lines = error_lines(tmp_path, [str(log)], config)
    assert "  rule cpu_train failed (see logs/cpu/train.log)" in lines
    assert any(l.startswith("  results/cpu/accuracy.csv was not written: ") for l in lines)
    assert "  no claim was verified (results/claims/all.json does not exist)" in lines
    # gpu and paper claims are not-run by design on this machine: not listed as the error's doing
    missing = undecided(load_claims(), tmp_path, config)
    listed = {cid for ids in missing.values() for cid in ids}
    tiers = {c["id"]: c["tier"] for c in load_claims()}
    assert listed and {tiers[c] for c in listed} <= {"analytic", "cpu"}
