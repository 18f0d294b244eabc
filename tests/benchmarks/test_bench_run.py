"""evaluate_benchmark end to end, deterministic result paths, atomic result writing."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from replicate.benchmarks import evaluate_benchmark, format_prompt, result_path, write_result
from replicate.benchmarks.fixtures import COLOURS


def _colour_model(sample):
    """A 'model' that looks at the first frame and answers with text, the way an LLM would."""
    import av

    assert "Answer with the option's letter" in format_prompt(sample)
    with av.open(str(sample.video_path)) as c:
        mean = next(c.decode(video=0)).to_ndarray(format="rgb24").reshape(-1, 3).mean(0)
    colour = min(COLOURS, key=lambda k: float(np.abs(mean - np.array(COLOURS[k])).sum()))
    return f"The answer is {'ABCDE'[sample.options.index(colour)]}."


def test_evaluate_benchmark_with_a_model_that_sees_the_video(fixture_root, load_quiet):
    samples = load_quiet("longvideobench", fixture_root("longvideobench", n=4))
    out = evaluate_benchmark(_colour_model, samples, progress=False)
    assert out["benchmark"] == "longvideobench"
    assert out["metrics"]["accuracy"] == 100.0 and out["metrics"]["n"] == 4
    assert [r["pred_index"] for r in out["samples"]] == [0, 1, 2, 3]
    assert out["samples"][1] == {
        "sample_id": "lvb001_0", "prediction": "The answer is B.", "pred_index": 1, "answer_index": 1, "correct": True
    }
    # a constant guess gets exactly the samples whose answer is A
    guess = evaluate_benchmark(lambda s: 0, samples, progress=False)
    assert guess["metrics"]["n_correct"] == 1


def test_evaluate_benchmark_propagates_model_errors(fixture_root, load_quiet):
    samples = load_quiet("videomme", fixture_root("videomme"))

    def broken(sample):
        raise RuntimeError("CUDA out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        evaluate_benchmark(broken, samples, progress=False)


def test_result_path_is_deterministic_and_validated(tmp_path):
    p = result_path(tmp_path, "paper", "llava-ov-7b", "holitom", 0.15, "videomme")
    assert p == tmp_path / "eval" / "paper" / "llava-ov-7b" / "holitom" / "r0.15" / "videomme.json"
    assert result_path(tmp_path, "paper", "llava-ov-7b", "holitom", 0.15, "videomme") == p
    assert result_path(tmp_path, "paper", "m", "vanilla", 1, "mlvu").parent.name == "r1.0"
    assert result_path(tmp_path, "paper", "m", "vanilla", None, "mlvu").parent.name == "full"
    assert result_path(tmp_path, "paper", "m", "x", 0.1 + 0.2 - 0.2, "mlvu").parent.name == "r0.1"  # float noise
    with pytest.raises(ValueError, match="unknown tier 'tpu'"):
        result_path(tmp_path, "tpu", "m", "x", 0.1, "mlvu")
    with pytest.raises(ValueError, match="unknown benchmark 'nextqa'"):
        result_path(tmp_path, "paper", "m", "x", 0.1, "nextqa")
    with pytest.raises(ValueError, match=r"retention must be in \(0, 1\]"):
        result_path(tmp_path, "paper", "m", "x", 1.5, "mlvu")
    with pytest.raises(ValueError, match="model '../evil'"):
        result_path(tmp_path, "paper", "../evil", "x", 0.1, "mlvu")


def test_write_result_round_trip(tmp_path):
    p = result_path(tmp_path, "paper", "m", "holitom", 0.1, "egoschema")
    assert write_result({"accuracy": 61.2, "n": 500}, p) == p
    assert json.loads(p.read_text()) == {"accuracy": 61.2, "n": 500}
    assert sorted(x.name for x in p.parent.iterdir()) == ["egoschema.json", "egoschema.json.sha256"]  # + its digest


@pytest.mark.parametrize("bad", [{"x": object()}, {"x": math.nan}, {"x": [1, {"inf": math.inf}]}])
def test_write_result_leaves_no_partial_file_when_serialisation_fails(tmp_path, bad):
    p = tmp_path / "out" / "videomme.json"
    with pytest.raises((TypeError, ValueError)):
        write_result({"a": list(range(1000)), **bad}, p)
    assert not p.parent.exists() or list(p.parent.iterdir()) == []  # no result, no temporary file
    # an existing good result survives a failed overwrite untouched
    write_result({"ok": True}, p)
    with pytest.raises((TypeError, ValueError)):
        write_result({"a": list(range(1000)), **bad}, p)
    assert json.loads(p.read_text()) == {"ok": True}
    assert sorted(x.name for x in p.parent.iterdir()) == ["videomme.json", "videomme.json.sha256"]  # + its digest
