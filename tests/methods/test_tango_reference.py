"""methods.tango (released fidelity) equals the straightforward reference of the released code, and
the speed benchmark writes its JSON with the output check."""
from __future__ import annotations

import json

import pytest
import torch

from replicate.microbench.tango import correlated_video, main
from methods.primitives import cache_blocking
from methods.tango import TangoConfig, resolve_sinks, tango_reduce
from methods.types import VideoTokens
from replicate.microbench.tango_reference import released_reference


@pytest.mark.parametrize("frames,grid,dim,retention,seed", [
    (16, (14, 14), 64, 0.10, 0), (12, (13, 13), 48, 0.15, 1), (9, (6, 6), 32, 0.20, 2), (1, (14, 14), 64, 0.1, 3),
])
def test_released_equals_reference(frames, grid, dim, retention, seed):
    vt = correlated_video(frames=frames, grid=grid, dim=dim, scene_len=4, seed=seed)
    cfg = TangoConfig(retention=retention, seed=seed)
    red = tango_reduce(vt, cfg)
    src, feats = released_reference(vt.features, vt.require("map_head_attn"), vt.times(), vt.grid, cfg,
                                    resolve_sinks(cfg, vt))
    assert torch.equal(red.source, src)
    assert torch.allclose(red.features, feats, atol=1e-5)
    if frames > 1:
        assert any(e > s for s, e in red.info["segments"])  # multi-frame segments were exercised


def test_reference_differs_from_paper_fidelity():
    # the reference is the released behaviour: the paper fidelity marks more static positions here
    vt = correlated_video(frames=8, grid=(14, 14), dim=64, scene_len=8)
    paper = tango_reduce(vt, TangoConfig(retention=0.1, fidelity="paper"))
    src, _ = released_reference(vt.features, vt.require("map_head_attn"), vt.times(), vt.grid,
                                TangoConfig(retention=0.1), resolve_sinks(TangoConfig(retention=0.1), vt))
    assert paper.info["static_positions"][0] > 0 and not torch.equal(paper.source, src)


def test_bench_writes_json_with_identity_check(tmp_path):
    out = tmp_path / "tango.json"
    rc = main(["--out", str(out), "--frames", "8", "--dim", "64", "--repeats", "1", "--threads", "1"])
    data = json.loads(out.read_text())
    assert rc == 0 and data["output_check"]["identical"]
    t = data["threads"]["1"]
    assert t["tango_reduce_s"]["median_wall"] > 0 and t["reference_s"]["median_cpu"] > 0
    assert data["config"]["fidelity"] == "released" and data["config"]["static_tau"] == 0.8


def test_bench_rejects_bad_threads(tmp_path):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "x.json"), "--threads", "two"])


def _ragged_video(lengths=(5, 2, 3, 1), grid=(6, 6), dim=48, seed=4) -> VideoTokens:
    """Shots of different lengths: the CPU path sums a static token's frames only where it is read,
    with the shorter segments' rows masked past their end."""
    shots = [correlated_video(frames=n, grid=grid, dim=dim, scene_len=n, seed=seed + i) for i, n in enumerate(lengths)]
    frames = sum(lengths)
    return VideoTokens(features=torch.cat([s.features for s in shots]), grid=grid,
                       timestamps=torch.arange(frames, dtype=torch.float32) * 0.5,
                       saliency={"map_head_attn": torch.cat([s.require("map_head_attn") for s in shots])})


@pytest.mark.parametrize("fidelity,dtype", [("released", torch.float32), ("paper", torch.float32),
                                            ("released", torch.bfloat16)])
def test_ragged_segments_equal_on_both_paths_and_the_reference(fidelity, dtype):
    vt = _ragged_video()
    if dtype != torch.float32:   # the CPU sums read half-precision rows and add them in fp32
        vt = VideoTokens(features=vt.features.to(dtype), grid=vt.grid, timestamps=vt.timestamps,
                         saliency=vt.saliency)
    cfg = TangoConfig(retention=0.25, fidelity=fidelity)
    with cache_blocking(True):
        cpu = tango_reduce(vt, cfg)
    with cache_blocking(False):
        batched = tango_reduce(vt, cfg)
    lengths = {e - s + 1 for (s, e), n in zip(cpu.info["segments"], cpu.info["static_positions"]) if n}
    assert len(lengths) >= 2                 # static parts in segments of different lengths
    assert torch.equal(cpu.source, batched.source)
    assert torch.allclose(cpu.features, batched.features, atol=1e-6, rtol=0)
    if fidelity == "released" and dtype == torch.float32:
        src, feats = released_reference(vt.features, vt.require("map_head_attn"), vt.times(), vt.grid, cfg,
                                        resolve_sinks(cfg, vt))
        assert torch.equal(cpu.source, src)
        assert torch.allclose(cpu.features, feats, atol=1e-5)
