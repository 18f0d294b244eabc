"""python -m methods.predict: the answer, tokens kept per stage and timings for one video; bad input
ends with exit status 2 and one line on stderr."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from methods.predict import main

REPO = Path(__file__).resolve().parents[2]


def _args(ckpt, video, *extra):
    return ["--model", str(ckpt), "--video", str(video), "--question", "What colour is it?", "--frames", "8",
            "--max-new-tokens", "4", *extra]


def test_prints_answer_tokens_and_timings(checkpoints, clips, capsys):
    rc = main(_args(checkpoints["llava-onevision"], clips[0], "--method", "holitom", "--retention", "0.5",
                    "--option", "inner_k=18"))
    out = capsys.readouterr().out
    assert rc == 0
    lines = out.splitlines()
    # inner_k in the papers' 28-layer notation, scaled to the checkpoint's depth
    import json

    from methods.setting import scale_layer

    depth = json.loads((checkpoints["llava-onevision"] / "config.json").read_text())["text_config"]["num_hidden_layers"]
    assert lines[0].startswith("answer: ") and "method: holitom (retention=0.5" in lines[1]
    assert f"inner_k={scale_layer(18, depth)}," in lines[1]
    assert "entering the LLM" in out and "of 72 unpruned" in out and "LLM last layer" in out
    assert "seconds: load model" in out and "prefill" in out and "decode" in out


def test_json_output_matches_the_python_api(checkpoints, clips, capsys):
    import methods

    rc = main(_args(checkpoints["llava-onevision"], clips[2], "--method", "fastv", "--option", "k=2",
                    "--option", "keep=0.25", "--json"))
    result = json.loads(capsys.readouterr().out)
    assert rc == 0 and result["method"] == "fastv" and result["family"] == "llava-onevision"
    model = methods.load(checkpoints["llava-onevision"], "fastv", k=2, keep=0.25, frames=8)
    ref = model.generate(clips[2], "What colour is it?", max_new_tokens=4)[0]
    assert result["answer"] == ref.text and result["tokens_kept"] == ref.tokens_kept.as_dict()
    assert result["llm_visual_per_layer"] == list(ref.schedule.llm_visual)
    assert set(result["seconds"]) >= {"load_model", "decode_video", "encode", "prefill", "decode"}


def test_molmo2_checkpoint(checkpoints, clips, capsys):
    assert main(_args(checkpoints["molmo2"], clips[1], "--method", "random", "--retention", "0.5", "--json")) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["family"] == "molmo2" and result["tokens_kept"]["llm_input"] * 2 == result["tokens_kept"]["unpruned"]


@pytest.mark.parametrize("case,pattern", [
    ("missing_video", r"video file '.*nope\.mp4' does not exist"),
    ("broken_video", r"cannot decode video '.*broken\.mp4'"),
    ("no_checkpoint", r"checkpoint directory '.*missing' does not exist"),
    ("unsupported_method", r"'stts' does not run on .*qwen2\.5-vl.*llava-onevision, .*molmo2"),
    ("unknown_method", r"unknown method 'holitomm'; registered: "),
    ("unknown_option", r"unknown option\(s\) \['inner_kk'\] for method 'holitom'; allowed: "),
    ("bad_option_syntax", r"--option 'inner_k' must be NAME=VALUE"),
    ("bad_frames", r"--frames must be >= 1"),
])
def test_errors_are_one_line_with_exit_2(checkpoints, clips, tmp_path, capsys, case, pattern):
    import re

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 64)
    llava, qwen = checkpoints["llava-onevision"], checkpoints["qwen2.5-vl"]
    argv = {
        "missing_video": _args(llava, tmp_path / "nope.mp4"),
        "broken_video": _args(llava, broken),
        "no_checkpoint": _args(tmp_path / "missing", clips[0]),
        "unsupported_method": _args(qwen, clips[0], "--method", "stts"),
        "unknown_method": _args(llava, clips[0], "--method", "holitomm"),
        "unknown_option": _args(llava, clips[0], "--method", "holitom", "--retention", "0.1", "--option", "inner_kk=2"),
        "bad_option_syntax": _args(llava, clips[0], "--method", "holitom", "--option", "inner_k"),
        "bad_frames": _args(llava, clips[0])[:-4] + ["--frames", "0"],
    }[case]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("python -m methods.predict: error: ")
    assert re.search(pattern, err), err


def test_command_line_process(checkpoints, clips):
    """As a user runs it: an unknown flag and a missing CUDA device are one line, exit 2."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    base = [sys.executable, "-m", "methods.predict", *_args(checkpoints["llava-onevision"], clips[0])]
    for extra, pattern in ((["--bogus"], "unrecognized arguments: --bogus"),
                           (["--device", "cuda"], "CUDA is not available")):
        proc = subprocess.run(base + extra, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
        assert proc.returncode == 2 and pattern in proc.stderr
        assert len([l for l in proc.stderr.splitlines() if "error:" in l]) == 1 and proc.stdout == ""
