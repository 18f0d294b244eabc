"""`snakemake --report` under another config than the finished run's is refused, naming the profile."""
from __future__ import annotations

import json

from replicate.configuration import load_config
from replicate.scale import report_mismatch, run_scale


def test_report_mismatch(tmp_path):
    all_json = tmp_path / "all.json"
    assert "does not exist" in report_mismatch(load_config(), str(all_json))
    smoke_cfg = load_config(overrides={"cpu": {"train": {"smoke": True}, "n_samples": 8}})
    all_json.write_text(json.dumps([{"id": "a", "run": run_scale(smoke_cfg)}]))
    msg = report_mismatch(load_config(), str(all_json))
    assert msg.startswith("results/ holds a smoke run, but this --report was asked with the config of a full default run")
    assert msg.endswith("snakemake --profile profiles/smoke --report results/report.html")
    assert report_mismatch(smoke_cfg, str(all_json)) is None
    all_json.write_text(json.dumps([{"id": "a"}]))  # written before scales were recorded: not judged
    assert report_mismatch(load_config(), str(all_json)) is None
