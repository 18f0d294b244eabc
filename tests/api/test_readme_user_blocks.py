"""The README's user entry points (section "From Python, lmms-eval and the command line") run as
written on tiny checkpoints: ``/data/...`` paths are replaced by a tiny random-weight LLaVA-OV in the
HF layout with 28 LLM layers (the 7B's depth, so HoliTom's K=18 etc. hold as stated) and by 32-frame
clips. Blocks without ``/data/`` run in tests/robustness/test_readme_blocks.py; the lmms-eval block
runs in tests/api/test_lmms_eval_model.py (marker lmms). A block none of these covers fails here."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SECTION = "## From Python, lmms-eval and the command line"
CHECKPOINT = "/data/llava-onevision-qwen2-7b-ov-hf"
CLIPS = ("/data/clip.mp4", "/data/clip2.mp4")


def section_blocks() -> list[tuple[str, str]]:
    text = (REPO / "README.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    body = text[start:end if end > 0 else None]
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^```(python|bash)\n(.*?)^```", body, flags=re.S | re.M)]


BLOCKS = section_blocks()


def is_lmms_block(code: str) -> bool:
    return "lmms-eval --model videoprune" in code


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    from replicate.benchmarks.fixtures import COLOURS, write_tiny_video
    from replicate.paper import rehearsal

    root = tmp_path_factory.mktemp("readme_user")
    ckpt = rehearsal.write_llava_checkpoint(root / "llava-ov-28", seed=0, layers=28)
    out = {CHECKPOINT: str(ckpt)}
    for path, colour in zip(CLIPS, ("red", "blue")):
        local = root / Path(path).name
        if not write_tiny_video(local, COLOURS[colour], n_frames=32, size=32):
            pytest.skip("PyAV cannot encode a video here")
        out[path] = str(local)
    return out


def substitute(code: str, paths: dict) -> str:
    for key in sorted(paths, key=len, reverse=True):
        code = code.replace(key, paths[key])
    left = re.findall(r"/data/[\w./-]+", code)
    assert not left, f"README paths with no tiny stand-in: {left}"
    return code


def test_section_has_the_three_entry_points():
    codes = [c for _, c in BLOCKS]
    assert any("methods.load(" in c and ".generate(" in c for c in codes)
    assert sum(is_lmms_block(c) for c in codes) == 1
    assert any("python -m methods.predict" in c for c in codes)


@pytest.mark.parametrize("lang,code", [b for b in BLOCKS if "/data/" in b[1]],
                         ids=lambda x: x if x in ("python", "bash") else "")
def test_block_runs_on_tiny_checkpoints(lang, code, paths):
    if is_lmms_block(code):
        pytest.skip("runs in tests/api/test_lmms_eval_model.py (marker lmms: lmms-eval in its own virtualenv)")
    code = substitute(code, paths)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    if lang == "python":
        cmd = [sys.executable, "-c", code]
    else:
        assert all(line.startswith("python -m methods.predict") for line in code.strip().splitlines()), code
        cmd = ["bash", "-ec", re.sub(r"(?m)^python ", f"{sys.executable} ", code)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    if "methods.predict" in code:
        assert proc.stdout.startswith("answer: ") and "entering the LLM" in proc.stdout
    elif "tokens_kept.llm_input" in code:
        lines = proc.stdout.strip().splitlines()
        assert len(lines) == 2 and all("visual tokens enter the LLM" in line for line in lines)
