"""HoliTom pre-LLM stages (I and II) as a pure function of VideoTokens."""
import math

import pytest
import torch

from methods.holitom import HoliTomConfig, density_merge_batched, holitom_reduce
from methods.primitives import make_generator
from methods.types import VideoTokens

SAL = "vit_attn_received"


def video(x, seed=0, policy="one_token", grid=None):
    F, N, _ = x.shape
    if grid is None:
        side = int(math.isqrt(N))
        grid = (side, N // side)
    attn = torch.rand(F, N, generator=make_generator(seed + 100))
    return VideoTokens(features=x, grid=grid, saliency={SAL: attn}, newline_policy=policy)


def mixed_video(F=8, N=16, D=24, seed=0):
    """Frames 0-3 share positions 0-9 (static) and change positions 10-15; frames 4-7 random."""
    g = make_generator(seed)
    x = torch.randn(F, N, D, generator=g)
    base = torch.randn(10, D, generator=g)
    x[:4, :10] = base + 0.05 * torch.randn(4, 10, D, generator=g)
    return x


def test_config_defaults_and_validation():
    assert HoliTomConfig(retention=0.10).effective_tau == 0.65
    assert HoliTomConfig(retention=0.15).effective_tau == 0.80
    assert HoliTomConfig(retention=0.15, tau=0.7).effective_tau == 0.7
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="retention"):
            HoliTomConfig(retention=bad)
    for bad in (0.0, 1.0, 1.2):
        with pytest.raises(ValueError, match="tau"):
            HoliTomConfig(retention=0.2, tau=bad)
    with pytest.raises(ValueError, match="contextual_fraction"):
        HoliTomConfig(retention=0.2, contextual_fraction=1.5)


def test_missing_saliency_is_a_key_error():
    t = VideoTokens(features=torch.randn(2, 4, 8), grid=(2, 2))
    with pytest.raises(KeyError, match=SAL):
        holitom_reduce(t, HoliTomConfig(retention=0.5))


def test_identical_frames_one_static_segment():
    F, N = 4, 16
    x = torch.randn(1, N, 8, generator=make_generator(1)).repeat(F, 1, 1)
    red = holitom_reduce(video(x), HoliTomConfig(retention=0.125))
    assert red.info["segments"] == [(0, 3)]
    assert red.info["total_reduced"] == 3 * N
    # r' = 0.125 / (16 / 64) = 0.5 -> round(16 * 0.5) = 8 static centres = r * F * N
    assert red.info["retention_rescaled"] == pytest.approx(0.5)
    assert red.num_tokens == 8 == round(0.125 * F * N)
    assert bool((red.source < N).all())  # static tokens live at the first frame
    assert red.positions == "contiguous"


def test_stage_one_static_tokens_are_frame_means_at_r1():
    x = mixed_video()
    red = holitom_reduce(video(x), HoliTomConfig(retention=1.0))
    seg0 = red.info["per_segment"][0]
    assert red.info["segments"][0] == (0, 3) and seg0["static_positions"] == 10
    # one_token order: the segment's 10 static tokens first, each the mean over frames 0-3
    assert red.source[:10].tolist() == list(range(10))
    assert torch.allclose(red.features[:10], x[:4, :10].mean(0), atol=1e-6)
    # then every dynamic token of frames 0..3 unchanged, frame by frame
    dyn_src = red.source[10:10 + 4 * 6]
    expected = [f * 16 + n for f in range(4) for n in range(10, 16)]
    assert dyn_src.tolist() == expected
    assert torch.equal(red.features[10:34], x[:4, 10:].reshape(24, -1))


def test_r1_keeps_every_dynamic_token():
    x = mixed_video(seed=3)
    red = holitom_reduce(video(x), HoliTomConfig(retention=1.0))
    F, N = 8, 16
    assert red.num_tokens == F * N - red.info["total_reduced"]
    assert red.info["retention_rescaled"] == 1.0
    kept = set(red.source.tolist())
    static_dropped = {f * N + n for f in range(1, 4) for n in range(10)}
    assert kept == set(range(F * N)) - static_dropped


def test_dynamic_tokens_are_attention_topk_per_frame():
    F, N = 3, 16
    x = torch.randn(F, N, 8, generator=make_generator(4))  # random: all singleton segments
    t = video(x, seed=4)
    red = holitom_reduce(t, HoliTomConfig(retention=0.25, tau=0.9))
    attn = t.saliency[SAL]
    assert red.info["segments"] == [(0, 0), (1, 1), (2, 2)]
    expected = [f * N + n for f in range(F) for n in sorted(torch.topk(attn[f], 4).indices.tolist())]
    assert red.source.tolist() == expected
    assert torch.equal(red.features, x.reshape(F * N, -1)[red.source])


@pytest.mark.parametrize("r", [0.1, 0.25, 0.5])
def test_output_count_close_to_budget_on_random_video(r):
    F, N = 16, 49
    x = torch.randn(F, N, 32, generator=make_generator(5))
    red = holitom_reduce(video(x), HoliTomConfig(retention=r))
    n_seg = len(red.info["segments"])
    assert abs(red.num_tokens - round(r * F * N)) <= n_seg
    # no static content: exactly ceil(N * r) per frame
    assert red.num_tokens == F * math.ceil(N * r)


def test_output_count_close_to_budget_with_static_segments():
    x = mixed_video(F=8, N=16, D=24, seed=6)
    for r in (0.2, 0.3):
        red = holitom_reduce(video(x), HoliTomConfig(retention=r))
        assert red.info["total_reduced"] == 30
        # each static set and each frame's dynamic set rounds by at most one token
        bound = len(red.info["segments"]) + 8
        assert abs(red.num_tokens - round(r * 8 * 16)) <= bound


def test_sources_valid_unique_and_grid_order():
    x = mixed_video(seed=7)
    for D in (0.0, 0.5):
        cfg = HoliTomConfig(retention=0.3, contextual_fraction=D)
        a = holitom_reduce(video(x, policy="one_token"), cfg)
        b = holitom_reduce(video(x, policy="grid"), cfg)
        for red in (a, b):
            src = red.source
            assert src.dtype == torch.long and bool((src >= 0).all()) and bool((src < 8 * 16).all())
            assert len(set(src.tolist())) == src.numel()
        assert b.source.tolist() == sorted(a.source.tolist())
        order = torch.argsort(a.source)
        assert torch.equal(a.features[order], b.features)


def test_contextual_tokens_when_contextual_fraction_positive():
    F, N = 2, 16
    x = torch.randn(F, N, 8, generator=make_generator(8))
    t = video(x, seed=8)
    red = holitom_reduce(t, HoliTomConfig(retention=0.5, tau=0.9, contextual_fraction=0.5))
    # per frame n_keep = 8: 4 dominant (attention top-4, by position) then 4 merged contextual
    attn = t.saliency[SAL]
    src = red.source.view(F, 8)
    for f in range(F):
        dom = sorted(torch.topk(attn[f], 4).indices.tolist())
        assert [s - f * N for s in src[f, :4].tolist()] == dom
        assert not set(dom) & {s - f * N for s in src[f, 4:].tolist()}
    # dominant tokens are copies; contextual ones are merges (differ from their centre)
    assert torch.equal(red.features[:4], x.reshape(-1, 8)[red.source[:4]])
    assert not torch.allclose(red.features[4:8], x.reshape(-1, 8)[red.source[4:8]])


def test_density_merge_by_hand():
    # three clumps on a line, 3 centres (k = min(7, 3) = 3 with self): the clump middles
    pts = torch.tensor([[0.0], [0.1], [-0.1], [0.3], [5.0], [5.2], [4.8], [10.0], [10.3], [9.7]])
    merged, centres = density_merge_batched(pts.unsqueeze(0), 3, 7, 0.6, make_generator(0))
    assert centres[0].tolist() == [0, 4, 7]
    # centre 0: members 0.1, -0.1, 0.3 (mean 0.1) -> 0.6 * 0 + 0.4 * 0.1 = 0.04
    # centre 5: members 5.2, 4.8 (mean 5) -> 5; centre 10: members 10.3, 9.7 -> 10
    assert torch.allclose(merged[0].flatten(), torch.tensor([0.04, 5.0, 10.0]), atol=1e-5)
    # a centre with no members is kept unchanged (4 centres: the outlier 0.3 is one)
    m4, c4 = density_merge_batched(pts[:4].unsqueeze(0), 4, 7, 0.6, make_generator(0))
    assert torch.equal(m4[0], pts[:4]) and c4[0].tolist() == [0, 1, 2, 3]


def test_deterministic_under_seed():
    x = mixed_video(seed=9)
    cfg = HoliTomConfig(retention=0.2, contextual_fraction=0.4, seed=3)
    a = holitom_reduce(video(x), cfg)
    b = holitom_reduce(video(x), cfg)
    assert torch.equal(a.features, b.features) and torch.equal(a.source, b.source)


def test_half_precision_input_keeps_dtype():
    x = mixed_video(seed=10).to(torch.bfloat16)
    red = holitom_reduce(video(x), HoliTomConfig(retention=0.25))
    assert red.features.dtype == torch.bfloat16


@pytest.mark.parametrize("chunk_bytes", [1, 4 << 20])
def test_cpu_chunked_static_merges_equal_the_batched_path(monkeypatch, chunk_bytes):
    """On CPU the static segments are merged a few at a time (padded.set_chunks): bitwise the
    outputs of the one-batch path a GPU runs, whether one set or all sets fit in a chunk."""
    from methods.primitives import padded
    from methods.primitives.similarity import cache_blocking
    monkeypatch.setattr(padded, "CPU_CHUNK_BYTES", chunk_bytes)
    g = make_generator(3)
    x = torch.cat([mixed_video(seed=s) for s in range(3)]) + 0.01 * torch.randn(24, 16, 24, generator=g)
    for policy, D in (("one_token", 0.0), ("grid", 0.5)):
        cfg = HoliTomConfig(retention=0.3, contextual_fraction=D)
        with cache_blocking(False):
            ref = holitom_reduce(video(x, policy=policy), cfg)
        with cache_blocking(True):
            got = holitom_reduce(video(x, policy=policy), cfg)
        assert sum(s["static_out"] > 0 for s in got.info["per_segment"]) >= 2
        assert torch.equal(got.source, ref.source) and torch.equal(got.features, ref.features)
