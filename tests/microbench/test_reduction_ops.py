"""The reductions' aten op and host-sync counts stay where issue 26 put them (replicate.microbench.reduction_ops).

Counts are taken as ``python -m replicate.microbench.reduction_ops`` takes them: under the dispatch tracer,
in inference mode, on the unblocked path a GPU runs. They depend on the video's segment structure,
not on the feature width, so the main suite checks LLaVA-OV's 32 x 14x14 layout at a width of 128
on the benchmark's three kinds of video (a 10 % margin over the counts measured when this test was
written); the ``slow`` test checks the issue's targets at the full width of 3584.
"""
from __future__ import annotations

import json

import pytest
import torch

from replicate.microbench.reduction_ops import Run, main, measure
from replicate.microbench.videos import INPUTS, VideoSpec, video_tokens

#: issue 26's targets at 32 x 196 x 3584, r = 0.10 (DyCoke: its lowest retention, 0.25)
TARGET_OPS = {"tango": 700, "holitom-wo-m": 574, "prunevid": 500, "dycoke": 400, "visionzip": 200,
              "fastvid": 400}
MAX_SYNCS = 2
RETENTION = {"tango": 0.10, "holitom-wo-m": 0.10, "prunevid": 0.10, "dycoke": 0.25, "visionzip": 0.10,
             "fastvid": 0.10}
#: (input, method) -> ops measured at width 128 when the batched reductions landed
MEASURED = {
    ("no-cut", "tango"): 423, ("cut-8", "tango"): 401, ("cut-2", "tango"): 417,
    ("no-cut", "holitom-wo-m"): 206, ("cut-8", "holitom-wo-m"): 206, ("cut-2", "holitom-wo-m"): 206,
    ("no-cut", "prunevid"): 222, ("cut-8", "prunevid"): 222, ("cut-2", "prunevid"): 222,
    ("no-cut", "dycoke"): 113, ("cut-8", "dycoke"): 113, ("cut-2", "dycoke"): 113,
    ("no-cut", "visionzip"): 156, ("cut-8", "visionzip"): 156, ("cut-2", "visionzip"): 156,
    ("no-cut", "fastvid"): 256, ("cut-8", "fastvid"): 233, ("cut-2", "fastvid"): 146,
}
#: the only syncs left: where an output size depends on the data
SYNC_FUNCTIONS = {"tango": {"_segmentation"}, "holitom-wo-m": {"holitom_reduce"},
                  "prunevid": {"temporal_segments", "prunevid_reduce"}, "dycoke": set(),
                  "visionzip": set(), "fastvid": {"dyseg_segments"}}


@pytest.fixture(scope="module", params=list(INPUTS))
def video(request):
    return request.param, video_tokens(VideoSpec(32, (14, 14), 128), INPUTS[request.param], seed=0)


@pytest.mark.parametrize("method", list(TARGET_OPS))
def test_counts_hold(video, method):
    name, tokens = video
    rec = measure(Run("llava-ov-7b", method, RETENTION[method], {}), tokens, repeats=1)
    assert rec["ops"] <= 1.1 * MEASURED[(name, method)], rec["top_op_sites"]
    assert rec["ops"] <= TARGET_OPS[method]
    assert rec["syncs"] <= MAX_SYNCS, rec["sync_sites"]
    assert {s["function"] for s in rec["sync_sites"]} <= SYNC_FUNCTIONS[method]
    assert all(s["kind"] in ("tolist",) for s in rec["sync_sites"])


@pytest.mark.slow
@pytest.mark.parametrize("cut", list(INPUTS))
def test_issue_targets_at_full_width(cut):
    tokens = video_tokens(VideoSpec(32, (14, 14), 3584), INPUTS[cut], seed=0)
    for method, target in TARGET_OPS.items():
        rec = measure(Run("llava-ov-7b", method, RETENTION[method], {}), tokens, repeats=1)
        assert rec["ops"] <= target and rec["syncs"] <= MAX_SYNCS, (method, rec["ops"], rec["sync_sites"])


def test_cli_writes_counts_and_sites(tmp_path):
    out = tmp_path / "ro.json"
    assert main(["--out", str(out), "--settings", "llava-ov-7b", "--methods", "dycoke", "visionzip",
                 "prunevid", "--retentions", "0.25", "--inputs", "cut-2", "--dim", "16", "--repeats", "1",
                 "--no-prefill"]) == 0
    rec = json.loads(out.read_text())
    dy = rec["runs"]["llava-ov-7b/dycoke/r=0.25"]["inputs"]["cut-2"]
    assert dy["syncs"] == 0 and dy["ops"] > 0 and dy["wall_s"] > 0 and dy["kept_tokens"] == round(0.25 * 32 * 196)
    vz = rec["runs"]["llava-ov-7b/visionzip/r=0.25"]["inputs"]["cut-2"]
    assert vz["syncs"] == 0 and vz["ops"] > 0 and vz["kept_tokens"] == round(0.25 * 32 * 196)
    pv = rec["runs"]["llava-ov-7b/prunevid/r=0.25"]["inputs"]["cut-2"]
    assert pv["syncs"] > 0 and all(s["site"].startswith("methods/baselines/prunevid.py:") for s in pv["sync_sites"])


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "x.json"), "--methods", "nope"])
    assert "unknown method" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "x.json"), "--repeats", "0"])


def test_video_inputs_are_seeded_and_cut_where_asked():
    spec = VideoSpec(8, (4, 4), 32)
    a, b = video_tokens(spec, 2, seed=3), video_tokens(spec, 2, seed=3)
    assert torch.equal(a.features, b.features)
    x = torch.nn.functional.normalize(a.features, dim=-1)
    cos = (x[1:] * x[:-1]).sum(-1).mean(-1)          # mean consecutive cosine per transition
    assert (cos[1::2] < 0.3).all() and (cos[0::2] > 0.5).all()   # cuts after frames 1, 3, 5
    with pytest.raises(ValueError, match="cut_every"):
        video_tokens(spec, 0)


def test_prefill_and_decode_read_nothing_per_layer():
    """No host sync fires once per decoder layer in a prefill or a cached decode step (issue 26: 0
    syncs per layer), with and without an inner-LLM stage, in place and in mask mode (before: two
    ``int()`` reads per layer in the prefill, one ``bool()`` per layer in a mask-mode decode)."""
    from replicate.microbench.reduction_ops import prefill_overhead

    layers = 6
    rec = prefill_overhead(frames=2, layers=layers)
    assert len(rec["plans"]) == 4
    for name, plan in rec["plans"].items():
        for part in (plan, plan["decode_step"]):
            assert all(site["count"] < layers for site in part["sync_sites"]), (name, part["sync_sites"])
        assert plan["syncs"] <= 10 and plan["decode_step"]["syncs"] <= 2, (name, plan["sync_sites"])


@pytest.mark.parametrize("cut", list(INPUTS))
def test_stts_selection_and_packing_counts_hold(cut):
    """STTS's selection + packing at Molmo2's 128 x 27x27 layout, 50 % of groups pruned (width 16:
    the counts do not depend on it): 76 ops measured when it was batched (109 and 16 syncs before),
    held with a 10 % margin under issue 26's 300; one sync, the per-frame kept counts read back in
    ``rearrange_tokens`` (first-fit-decreasing is sequential and sets the number of bins)."""
    tokens = video_tokens(VideoSpec(128, (27, 27), 16, "none"), INPUTS[cut], seed=0)
    rec = measure(Run("molmo2-8b", "stts", 0.5, {}), tokens, repeats=1)
    assert rec["ops"] <= min(300, 1.1 * 76), rec["top_op_sites"]
    assert rec["syncs"] <= MAX_SYNCS, rec["sync_sites"]
    assert {(s["function"], s["kind"]) for s in rec["sync_sites"]} == {("rearrange_tokens", "tolist")}
    assert rec["kept_tokens"] == 128 * 729 // 2
