"""Every output knows its run: the scale derived from the config actually used, in every claim JSON,
REPORT.md's title, and the README refresher that takes only a full default run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from replicate.claims import load_claims
from replicate.configuration import deep_merge, load_config
from replicate.report import main as refresh_readme
from replicate.report import render_report
from replicate.scale import describe, run_scale
from replicate.verify import verify_claim

REPO = Path(__file__).resolve().parents[2]


def _profile(name: str) -> dict:
    prof = yaml.safe_load((REPO / "profiles" / name / "config.yaml").read_text())
    return yaml.safe_load((REPO / "profiles" / name / prof["configfile"]).read_text())


def test_scale_of_the_default_the_smoke_profile_a_site_and_a_changed_config():
    default = load_config()
    assert run_scale(default) == {"scale": "full", "default": True, "differs": []}
    smoke = run_scale(load_config(overrides=_profile("smoke")))
    assert smoke["scale"] == "smoke" and not smoke["default"] and "cpu.train" in smoke["differs"]
    site = run_scale(load_config(overrides={"gpu": True, "paths": {"checkpoints": {"llava-onevision-7b": "/x"}}}))
    assert site["scale"] == "full" and not site["default"] and site["differs"] == ["gpu", "paths.checkpoints"]
    custom = run_scale(load_config(overrides={"cpu": {"n_samples": 4}}))
    assert custom == {"scale": "custom", "default": False, "differs": ["cpu.n_samples"]}
    assert describe(custom) == "custom run (cpu.n_samples differ from the defaults)"
    rehearsal = run_scale(load_config(overrides={"paper": {"rehearsal": True}}))
    assert rehearsal["scale"] == "rehearsal"


def test_every_claim_json_carries_its_run():
    claim = next(c for c in load_claims() if c["id"] == "holitom-best-k-ov7b")
    config = load_config(overrides=_profile("smoke"))
    out = verify_claim(claim, results_dir="/nonexistent", config=config)
    assert out["run"]["scale"] == "smoke"


def _results(run):
    base = {"paper": "holitom", "quantity": "flops_ratio", "reported": 6.9, "measured": 6.91, "unit": "%",
            "verdict": "confirmed", "reason": "r", "tier": "analytic", "run": run,
            "provenance": {"commit": "0123456789abcdef", "timestamp": "2026-01-01T00:00:00+00:00"}}
    return [{**base, "id": cid} for cid in ("holitom-flops-ov7b-r10", "holitom-outer-reduction-r10")]


SMOKE = {"scale": "smoke", "default": False, "differs": ["cpu.train", "cpu.n_samples"]}
FULL = {"scale": "full", "default": True, "differs": []}


def test_report_title_says_the_scale():
    smoke = render_report(_results(SMOKE))
    assert smoke.startswith("# Claims of a smoke run: reported vs reproduced vs predicted\n")
    assert "> **smoke run** (profiles/smoke" in smoke and "cpu.train, cpu.n_samples" in smoke
    full = render_report(_results(FULL))
    assert full.startswith("# Claims of a full default run:") and "> **" not in full
    mixed = render_report(_results(SMOKE)[:1] + _results(FULL)[1:])
    assert mixed.startswith("# Claims of an unknown run") and "more than one run" in mixed


def _readme(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("x\n<!-- claims-table:start -->\nRun facts.\n\n| old |\n|---|\n<!-- claims-table:end -->\n")
    return readme


@pytest.mark.parametrize("run,word", [(SMOKE, "smoke run"), ({**FULL, "default": False, "differs": ["gpu"]}, "full run"),
                                      ({"scale": "custom", "default": False, "differs": ["cpu.n_samples"]}, "custom run")])
def test_readme_refresher_refuses_anything_but_a_full_default_run(tmp_path, capsys, run, word):
    readme = _readme(tmp_path)
    before = readme.read_text()
    (tmp_path / "all.json").write_text(json.dumps(_results(run)))
    assert refresh_readme([str(readme), str(tmp_path / "README_table.md")]) == 2
    err = capsys.readouterr().err
    assert f"comes from a {word}" in err and "only from a full default run" in err
    assert readme.read_text() == before


def test_readme_refresher_renders_a_full_default_run_from_its_json(tmp_path, capsys):
    readme = _readme(tmp_path)
    (tmp_path / "all.json").write_text(json.dumps(_results(FULL)))
    assert refresh_readme([str(readme), str(tmp_path / "all.json")]) == 0
    text = readme.read_text()
    assert "Run facts." in text and "| old |" not in text
    assert "| `holitom-flops-ov7b-r10` | holitom | 6.9 % | 6.91 % | — | confirmed |" in text
    # claims written before scales were recorded are refused too
    (tmp_path / "all.json").write_text(json.dumps([{k: v for k, v in r.items() if k != "run"} for r in _results(FULL)]))
    assert refresh_readme([str(readme), str(tmp_path / "all.json")]) == 2
    assert "written before scales were recorded" in capsys.readouterr().err
