"""The lmms_eval_* evaluators on hand-written cell summaries: verdicts, definitions, not-run reasons."""
from __future__ import annotations

import copy
import json

import pytest

from replicate.claims import claims_by_id
from replicate.paper import cells as C
from replicate.verify import verify_claim


@pytest.fixture(scope="module")
def claims():
    return claims_by_id()


@pytest.fixture
def config(tmp_path):
    ckpt, data = tmp_path / "ckpt", tmp_path / "data"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")  # a checkpoint dir is runnable only with its config.json
    data.mkdir()
    names = ("llava-onevision-7b", "molmo2-4b", "molmo2-4b-lite-50")
    benches = ("mvbench", "egoschema", "longvideobench", "videomme", "mlvu", "stts-13tasks")
    return {"paths": {"checkpoints": {n: str(ckpt) for n in names}, "datasets": {b: str(data) for b in benches}},
            "paper": {}, "seeds": [0]}


def write(results, cell, score, status="ok", rehearsal=False, **extra):
    path = results / cell.summary_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cell": cell.as_dict(), "status": status, "reason": extra.pop("reason", None),
                                "headline_accuracy": score, "n": 10, "rehearsal": rehearsal,
                                "model_seconds": 5.0, "shard_seconds": 9.0, "device": "cpu", **extra}))
    (results / C.CELLS_INDEX).write_text("{}")


def fill(results, claim, config, method_scores, vanilla_scores, **kw):
    for c in C.claim_cells(claim, config):
        scores = vanilla_scores if c.method == "vanilla" else method_scores
        write(results, c, scores[c.benchmark], **kw)


def test_perf_kept_is_the_ratio_of_averages_and_confirms(claims, config, tmp_path):
    claim = claims["holitom-perf-kept-ov7b-r10"]  # 99.1 +- 0.5
    fill(tmp_path, claim, config, {"mvbench": 57.3, "egoschema": 61.2, "longvideobench": 56.3, "videomme": 56.8},
         {"mvbench": 58.3, "egoschema": 60.4, "longvideobench": 56.4, "videomme": 58.6})
    out = verify_claim(claim, results_dir=tmp_path, config=config)
    assert out["verdict"] == "confirmed"
    assert out["measured"] == pytest.approx(100 * (57.3 + 61.2 + 56.3 + 56.8) / (58.3 + 60.4 + 56.4 + 58.6))
    assert "docs/sources.md" in out["evidence"]["definition"]["source"] and "rehearsal" not in out["evidence"]


def test_perf_kept_refutes_and_labels_a_rehearsal(claims, config, tmp_path):
    claim = claims["tango-perf-kept-ov7b-r10"]
    fill(tmp_path, claim, config, dict.fromkeys(("mvbench", "longvideobench", "mlvu", "videomme"), 40.0),
         dict.fromkeys(("mvbench", "longvideobench", "mlvu", "videomme"), 50.0), rehearsal=True)
    out = verify_claim(claim, results_dir=tmp_path, config=config)
    assert out["verdict"] == "refuted" and out["measured"] == pytest.approx(80.0)
    assert out["evidence"]["rehearsal"].startswith("REHEARSAL")


def test_accuracy_drop_over_the_suite(claims, config, tmp_path):
    claim = claims["stts-accuracy-drop-13tasks"]  # 0.7 +- 0.5 pp
    members = C.DEFAULT_SUITES["stts-13tasks"]
    fill(tmp_path, claim, config, dict.fromkeys(members, 62.3), dict.fromkeys(members, 63.0))
    out = verify_claim(claim, results_dir=tmp_path, config=config)
    assert out["verdict"] == "confirmed" and out["measured"] == pytest.approx(0.7)
    assert out["evidence"]["method"]["suite_members"] == {"stts-13tasks": len(members)}


def test_single_benchmark_accuracy_cell(claims, config, tmp_path):
    claim = claims["holitom-t1-acc-holitom-r10-mvbench"]  # 57.3 +- 0.5
    fill(tmp_path, claim, config, {"mvbench": 50.0}, {})
    out = verify_claim(claim, results_dir=tmp_path, config=config)
    assert out["verdict"] == "refuted" and out["measured"] == 50.0


def test_missing_or_failed_cells_are_not_run_with_the_reason(claims, config, tmp_path):
    claim = claims["holitom-perf-kept-ov7b-r10"]
    cells = C.claim_cells(claim, config)
    write(tmp_path, cells[0], 50.0)
    out = verify_claim(claim, results_dir=tmp_path, config=config)
    assert out["verdict"] == "not-run" and "cell summary results/paper/cells/" in out["reason"]
    for c in cells:
        write(tmp_path, c, None, status="error", reason="paths.datasets.mvbench: no annotation file")
    out = verify_claim(claim, results_dir=tmp_path, config=config)
    assert out["verdict"] == "not-run" and "paths.datasets.mvbench: no annotation file" in out["reason"]


def test_baseline_checkpoint_without_a_path_names_the_key(claims, config, tmp_path):
    claim = claims["stts-accuracy-drop-videomme"]
    cfg = copy.deepcopy(config)
    cfg["paths"]["checkpoints"]["molmo2-4b"] = ""
    fill(tmp_path, claim, cfg, {"videomme": 60.0}, {"videomme": 61.0})
    out = verify_claim(claim, results_dir=tmp_path, config=cfg)
    assert out["verdict"] == "not-run" and "config key paths.checkpoints.molmo2-4b is empty" in out["reason"]


def test_unknown_baseline_is_not_run(claims, config, tmp_path):
    claim = copy.deepcopy(claims["stts-vs-tome-50"])
    claim["setting"]["baseline"] = "frame-fusion"
    fill(tmp_path, claim, config, dict.fromkeys(C.DEFAULT_SUITES["stts-13tasks"], 60.0), {})
    out = verify_claim(claim, results_dir=tmp_path, config=config)
    assert out["verdict"] == "not-run" and "baseline 'frame-fusion' is not a registered method" in out["reason"]


def test_tome_baseline_runs_training_free_on_the_vanilla_checkpoint(claims, config, tmp_path):
    """stts-vs-tome-50 plans ToMe cells at retention 0.5 on molmo2-4b (baseline_checkpoint), STTS's on
    its Lite-50 checkpoint; the gain is mean(STTS) - mean(ToMe)."""
    claim = claims["stts-vs-tome-50"]
    cells = C.claim_cells(claim, config)
    tome = [c for c in cells if c.method == "tome"]
    assert len(tome) == len(C.DEFAULT_SUITES["stts-13tasks"])
    assert {(c.checkpoint, c.retention, c.tag) for c in tome} == {("molmo2-4b", 0.5, "tome_r0.50")}
    assert {c.checkpoint for c in cells if c.method == "stts"} == {"molmo2-4b-lite-50"}
    for c in cells:
        write(tmp_path, c, 62.3 if c.method == "stts" else 61.1)
    out = verify_claim(claim, results_dir=tmp_path, config=config)
    assert out["measured"] == pytest.approx(1.2) and out["verdict"] == "confirmed"
    cfg = copy.deepcopy(config)
    cfg["paths"]["checkpoints"]["molmo2-4b"] = ""
    out = verify_claim(claim, results_dir=tmp_path, config=cfg)
    assert out["verdict"] == "not-run"
    assert "no baseline checkpoint for molmo2-4b: config key paths.checkpoints.molmo2-4b is empty" in out["reason"]


def test_runtime_and_best_k(claims, config, tmp_path):
    run = claims["tango-readme-gpu-runtime-s"]
    fill(tmp_path, run, config, {"videomme": 1.0}, {})
    out = verify_claim(run, results_dir=tmp_path, config=config)
    assert out["measured"] == 5.0 and out["evidence"]["field"] == "model_seconds"
    best = claims["holitom-best-k-ov7b"]
    for k, cells in C.best_k_cells(best, config).items():
        for c in cells:
            write(tmp_path, c, 50.0 + (k == 18))
    out = verify_claim(best, results_dir=tmp_path, config=config)
    assert out["verdict"] == "confirmed" and out["measured"] == 18.0
