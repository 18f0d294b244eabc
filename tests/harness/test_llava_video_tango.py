"""Tango on the LLaVA-Video setting runs its intra-LLM stage wherever cells are built from a model:
the option rule (``Tango.from_setting``: tests/methods/test_from_setting.py) and the efficiency harness ``--arch llava-video-7b``
(at tiny size, as the other harness tests); the paper tier: tests/paper/test_paper_tango_video.py."""
import pytest

from methods.adapters.llava_onevision_loading import tiny_config
from replicate.harness import bench_models
from replicate.harness.efficiency import build_parser, run_efficiency

FRAMES = 4


def test_cli_accepts_the_llava_video_arch():
    args = build_parser().parse_args(["--arch", "llava-video-7b", "--out", "x"])
    assert args.arch == "llava-video-7b" and bench_models.default_frames("llava-video-7b") == 64
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--arch", "llava-video-72b", "--out", "x"])


@pytest.fixture
def tiny_video_arch(monkeypatch):
    """``llava-video-7b`` built from the tiny config (the full-size one is 7B parameters)."""
    real = bench_models.arch_config
    monkeypatch.setattr(bench_models, "arch_config",
                        lambda arch: tiny_config(4, 84) if arch == "llava-video-7b" else real(arch))


def test_efficiency_harness_llava_video_runs_tango_with_the_intra_stage(tiny_video_arch):
    cells = run_efficiency(arch="llava-video-7b", methods=["tango"], retentions=[0.5], frames=FRAMES,
                           repeats=1, warmup=0, decode_tokens=1, threads=1, hardware="cpu-2core",
                           progress=False)
    rows = {c["method"]: c for c in cells}
    assert all(c["status"] == "ok" for c in cells)
    van, tango = ({k: list(v) for k, v in rows[m]["schedule"].items() if k.startswith("llm_")}
                  for m in ("vanilla", "tango"))
    assert van["llm_visual"] == [FRAMES * 9] * 4 and van["llm_newline"] == [FRAMES * 3] * 4  # 3x3 grid
    applied = rows["tango"]["options"]["applied"]
    assert applied["intra_llm"] is True and applied["intra_k"] == 3 and applied["llm_layers"] == 4
    span = [v + n for v, n in zip(tango["llm_visual"], tango["llm_newline"])]
    assert span[:3] == [span[0]] * 3
    assert span[3] == round(span[0] * 0.5)                 # released span: features + newlines, round()
    assert tango["llm_visual"][0] < FRAMES * 9

