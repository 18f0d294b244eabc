"""PruneVid: temporal segmentation, static averaging, budgeted spatial merging, inner-LLM stage."""
import math

import pytest
import torch

import methods.baselines.prunevid as prunevid_module
from methods.attach import apply_method
from methods.primitives import cache_blocking, make_generator
from methods.baselines.prunevid import (PruneVidConfig, apportion, cluster_merge, label_segments,
                              mean_pairwise_cosine, prunevid_reduce, refine_labels, temporal_segments)
from methods.registry import get_method
from methods.types import VideoTokens


def refined(labels):
    return refine_labels(torch.tensor(labels)).tolist()


def test_refine_keeps_longest_runs_and_relabels_the_rest():
    # cluster 0: runs of 2 and 3 -> the run of 2 is released; cluster 1: a single frame -> released
    assert refined([0, 0, 1, 0, 0, 0, 2, 2]) == [0, 0, 0, 0, 0, 0, 2, 2]
    # released frame between runs of equal length -> left neighbour
    assert refined([0, 0, 1, 2, 2]) == [0, 0, 0, 2, 2]
    # left neighbour measured after its own relabelling; tie 2 vs 2 -> left
    assert refined([1, 0, 0, 0, 1, 1, 2, 3, 3]) == [0, 0, 0, 0, 1, 1, 1, 3, 3]
    # every cluster a singleton: nothing survives, no neighbour -> label 0
    assert refined([0, 1, 2]) == [0, 0, 0]
    # two runs tied for longest both stay (official keeps every run of maximal length)
    assert refined([0, 0, 1, 1, 0, 0]) == [0, 0, 1, 1, 0, 0]
    assert label_segments(torch.tensor([0, 0, 1, 1, 0, 0])) == [(0, 1), (2, 3), (4, 5)]


def two_scene_features(F=8, N=4, D=8, cut=5, seed=0):
    g = make_generator(seed)
    a = torch.zeros(D)
    a[0] = 2.0
    b = torch.zeros(D)
    b[1] = 2.0
    scene = torch.stack([a if f < cut else b for f in range(F)])            # (F, D)
    return scene[:, None, :] + 0.01 * torch.randn(F, N, D, generator=g)


def test_segment_boundaries_from_frame_clusters():
    x = two_scene_features()
    # int(8 * 0.25) = 2 clusters of the per-frame means -> scenes 0-4 and 5-7
    assert temporal_segments(x, 0.25, 7, make_generator(0)) == [(0, 4), (5, 7)]
    # one cluster -> one segment
    assert temporal_segments(x, 0.125, 7, make_generator(0)) == [(0, 7)]


def test_mean_pairwise_cosine_by_hand():
    x = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]], [[2.0, 0.0]]])   # W=3, N=1
    # ordered distinct pairs: cos = 0, 1, 0 (and symmetric) -> mean 1/3
    assert mean_pairwise_cosine(x).tolist() == pytest.approx([1 / 3])
    assert torch.isnan(mean_pairwise_cosine(x[:1])).all()


def test_apportion_largest_remainder():
    assert apportion(10, [4, 6, 10]) == [2, 3, 5]
    assert apportion(7, [5, 5, 5]) == [3, 2, 2]          # remainder tie -> earlier set
    assert apportion(5, [3, 0, 7]) == [2, 0, 3]
    assert apportion(30, [4, 6]) == [4, 6]               # more than available -> everything
    assert apportion(0, [4, 6]) == [0, 0]


def test_cluster_merge_is_the_plain_mean_of_each_cluster():
    x = torch.tensor([[0.0], [0.1], [10.0], [10.1]])
    merged, centres = cluster_merge(x, 2, 2, make_generator(0))
    assert centres[0].item() in (0, 1) and centres[1].item() in (2, 3)
    assert merged.view(-1).tolist() == pytest.approx([0.05, 10.05])
    same, idx = cluster_merge(x, 4, 2, make_generator(0))
    assert torch.equal(same, x) and idx.tolist() == [0, 1, 2, 3]


def static_video():
    """One 4-frame segment, N=4, D=4. Positions 0, 1 static (cos > 0.8), positions 2, 3 dynamic."""
    e = torch.eye(4)
    x = torch.zeros(4, 4, 4)
    x[:, 0] = torch.tensor([1.0, 1.1, 0.9, 1.0])[:, None] * torch.tensor([1.0, 2.0, 0.0, 0.0])
    x[:, 1] = torch.tensor([[1, 0, 0, 0], [1, 0.1, 0, 0], [1, -0.1, 0, 0], [1, 0, 0.1, 0]])
    x[:, 2] = e            # frame f: e_f -> mutually orthogonal
    x[:, 3] = -e
    return VideoTokens(x, (2, 2))


def test_static_positions_are_averaged_over_the_segment():
    t = static_video()
    red = prunevid_reduce(t, PruneVidConfig(retention=1.0, temporal_segment_ratio=0.25))
    assert red.info["segments"] == [(0, 3)]
    assert red.info["per_segment"][0]["static_positions"] == 2
    # 2 static + 4 frames x 2 dynamic = 10 tokens, fewer than round(1.0 * 16): everything kept
    assert red.info["tokens_after_static"] == 10 and red.info["budget_short"] == 6
    assert red.source.tolist() == [0, 1, 2, 3, 6, 7, 10, 11, 14, 15]
    assert torch.allclose(red.features[0], torch.tensor([1.0, 2.0, 0.0, 0.0]))
    assert torch.allclose(red.features[1], torch.tensor([1.0, 0.0, 0.025, 0.0]))
    assert torch.equal(red.features[2:], t.features[:, 2:].reshape(8, 4))


def random_video(F=8, N=16, D=32, seed=0, policy="one_token"):
    return VideoTokens(torch.randn(F, N, D, generator=make_generator(seed)), (4, 4), newline_policy=policy)


def test_budget_hits_round_half_up_of_r_F_N():
    t = random_video()
    for r, want in ((0.25, 32), (0.1, 13), (0.15, 19)):          # round_half_up(r * 128)
        red = prunevid_reduce(t, PruneVidConfig(retention=r))
        assert red.num_tokens == want == math.floor(r * 128 + 0.5)
        assert red.info["budget_short"] == 0
        assert red.source.unique().numel() == want
    grid = prunevid_reduce(random_video(policy="grid"), PruneVidConfig(retention=0.25))
    assert torch.equal(grid.source, grid.source.sort().values)


def test_official_cluster_ratio_mode():
    # random features: no static tokens; each frame's 16 dynamic tokens (> 14) -> int(16 * 0.5) = 8
    red = prunevid_reduce(random_video(F=4), PruneVidConfig(cluster_ratio=0.5))
    assert red.num_tokens == 4 * 8
    # sets of <= 14 tokens are not clustered: a 3x3 grid keeps its 9 tokens per frame
    small = VideoTokens(torch.randn(4, 9, 32, generator=make_generator(1)), (3, 3))
    assert prunevid_reduce(small, PruneVidConfig(cluster_ratio=0.5)).num_tokens == 36


def scene_video(seed, F=12, N=30, D=24, dtype=torch.float32, policy="one_token"):
    """Piecewise-constant scenes plus jitter: several segments, some with static positions."""
    g = make_generator(seed)
    scenes = torch.randn(4, N, D, generator=g)
    cuts = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 3])[:F]
    x = scenes[cuts] + 0.2 * torch.randn(F, N, D, generator=g)
    x[:, : N // 3] = scenes[0, : N // 3]        # a third of the positions static in every segment
    return VideoTokens(x.to(dtype), (5, 6), newline_policy=policy)


@pytest.mark.parametrize("chunk_bytes", [1, 4 * 30 * 24 * 3, 1 << 30])
@pytest.mark.parametrize("dtype,policy,opts", [(torch.float32, "one_token", {"retention": 0.2}),
                                               (torch.bfloat16, "grid", {"retention": 0.45}),
                                               (torch.float32, "grid", {"cluster_ratio": 0.5})])
def test_cpu_blocked_path_equals_the_batched_one(monkeypatch, chunk_bytes, dtype, policy, opts):
    """The CPU path (static masks frame by frame, sets clustered in chunks of similar size: one set,
    a few, all) gives the unblocked (GPU) path's output bit for bit, with the same noise draws."""
    monkeypatch.setattr(prunevid_module, "CHUNK_BYTES", chunk_bytes)
    t = scene_video(7, dtype=dtype, policy=policy)
    cfg = PruneVidConfig(**opts, seed=3)
    with cache_blocking(True):
        blocked = prunevid_reduce(t, cfg)
    with cache_blocking(False):
        batched = prunevid_reduce(t, cfg)
    assert len(blocked.info["segments"]) > 1 and any(s["static_positions"] for s in blocked.info["per_segment"])
    assert blocked.info == batched.info
    assert torch.equal(blocked.source, batched.source)
    assert blocked.features.dtype == dtype and torch.equal(blocked.features, batched.features)


def test_deterministic_under_seed():
    t = random_video(seed=3)
    a = prunevid_reduce(t, PruneVidConfig(retention=0.2, seed=5))
    b = prunevid_reduce(t, PruneVidConfig(retention=0.2, seed=5))
    assert torch.equal(a.source, b.source) and torch.equal(a.features, b.features)


def test_config_validation():
    with pytest.raises(ValueError, match="exactly one of retention"):
        PruneVidConfig()
    with pytest.raises(ValueError, match="exactly one of retention"):
        PruneVidConfig(retention=0.2, cluster_ratio=0.5)
    with pytest.raises(ValueError, match="tau"):
        PruneVidConfig(retention=0.2, tau=1.0)
    with pytest.raises(ValueError, match="selected_layer"):
        get_method("prunevid", retention=0.2, selected_layer=-1)


def test_inner_stage_and_nominal_mapping():
    m = get_method("prunevid", retention=0.25)
    plan = m.inner_plan(28)
    assert [(s.layer, s.keep) for s in plan.stages] == [(11, 0.4)] and plan.scoring == "last"
    off = get_method("prunevid", retention=0.25, selected_layer=None)
    assert off.inner_plan(28) is None
    assert off.nominal_schedule("llava-onevision-7b").llm_visual == (1568,) * 28  # round(0.25 * 6272)
    sched = m.nominal_schedule("llava-onevision-7b", frames=32)
    kept = math.floor(0.25 * 32 * 196 + 0.5)
    assert sched.llm_visual[:11] == (kept,) * 11
    assert sched.llm_visual[11:] == (math.floor(kept * 0.4 + 0.5),) * 17
    with pytest.raises(NotImplementedError, match="cluster_ratio"):
        get_method("prunevid", cluster_ratio=0.5).nominal_schedule("llava-onevision-7b", frames=32)


@pytest.fixture(scope="module")
def tiny_adapter():
    from methods.adapters import LlavaOnevisionAdapter

    return LlavaOnevisionAdapter.tiny("llava-onevision", seed=0, layers=4, image_size=112)


@pytest.mark.parametrize("opts,visual", [
    ({"retention": 0.25, "selected_layer": 1, "alpha": 0.5}, (32, 32, 16, 16)),
    ({"retention": 0.25, "selected_layer": None}, (32, 32, 32, 32)),
])
def test_end_to_end_tiny_schedule(tiny_adapter, opts, visual):
    ad = tiny_adapter
    px = torch.randn(8, 3, 112, 112, generator=torch.Generator().manual_seed(1))
    with apply_method(ad, "prunevid", **opts) as h:
        g = ad.run(px, "What moves?", max_new_tokens=3)
    rec = g.schedule
    assert len(g.tokens) == 3 and rec.decode_steps == 2
    assert rec.llm_visual == visual                                   # round(0.25 * 8 * 16) = 32
    nom = h.method.nominal_schedule(ad, frames=8, text_tokens=rec.text_tokens, decode_steps=rec.decode_steps)
    for field in ("llm_visual", "llm_newline", "text_tokens", "decode_steps", "projector_tokens", "vision"):
        assert getattr(rec, field) == getattr(nom, field), field
