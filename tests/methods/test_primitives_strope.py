"""ST-RoPE: identity at position zero, relative-position property, locality decay, rows on demand."""
import pytest
import torch

from methods.primitives import (
    DEFAULT_SECTIONS, StRopeRows, cache_blocking, make_generator, rope_sections, st_rope, st_rope_and_cosines,
    st_rope_rows_and_cosines,
)


def test_sections_default_and_proportional_split():
    assert rope_sections(3584) == (1196, 1194, 1194)
    assert rope_sections(48) == (16, 16, 16)
    s = rope_sections(64)
    assert sum(s) == 64 and all(v % 2 == 0 for v in s)
    with pytest.raises(ValueError, match="even"):
        rope_sections(33)


def test_zero_positions_give_the_normalised_input():
    x = torch.randn(1, 1, 48, generator=make_generator(0)) * 3
    out = st_rope(x, torch.zeros(1), (1, 1))
    assert torch.allclose(out, torch.nn.functional.normalize(x, dim=-1), atol=1e-6)
    assert torch.allclose(st_rope(torch.randn(3, 6, 48), torch.arange(3.0), (2, 3)).norm(dim=-1),
                          torch.ones(3, 6), atol=1e-5)


def test_time_translation_leaves_dot_products_unchanged():
    x = torch.randn(4, 6, 60, generator=make_generator(1))
    t = torch.tensor([0.0, 0.5, 2.0, 7.0])
    a = st_rope(x, t, (2, 3)).reshape(24, 60)
    b = st_rope(x, t + 13.25, (2, 3)).reshape(24, 60)
    assert torch.allclose(a @ a.T, b @ b.T, atol=1e-5)
    assert not torch.allclose(a, b, atol=1e-3)  # the vectors themselves did rotate


def test_identical_content_similarity_decays_with_distance():
    v = torch.randn(3584, generator=make_generator(2))
    # time: the same token at t = 0, 1, 2, 4, 8 seconds
    x = v.expand(5, 1, 3584)
    r = st_rope(x, torch.tensor([0.0, 1.0, 2.0, 4.0, 8.0]), (1, 1))[:, 0]
    sims = (r[1:] @ r[0]).tolist()
    assert sims == sorted(sims, reverse=True) and sims[0] < 1.0
    # space: one frame, identical content along a row of 8 columns
    xs = v.expand(1, 8, 3584)
    rs = st_rope(xs, torch.zeros(1), (1, 8))[0]
    ssp = (rs[1:] @ rs[0]).tolist()
    assert ssp == sorted(ssp, reverse=True) and ssp[0] < 1.0


def test_shape_errors():
    with pytest.raises(ValueError, match="grid"):
        st_rope(torch.randn(2, 6, 48), torch.zeros(2), (2, 2))
    with pytest.raises(ValueError, match="t must be"):
        st_rope(torch.randn(2, 6, 48), torch.zeros(3), (2, 3))


@pytest.mark.parametrize("frames", [1, 5])
def test_one_pass_rope_and_cosines_equal_the_separate_computations_bitwise(frames):
    g = torch.Generator().manual_seed(3)
    x = 3.0 * torch.randn(frames, 12, 24, generator=g)
    t = torch.arange(frames, dtype=torch.float32) * 0.7
    rope, cos = st_rope_and_cosines(x, t, (3, 4), (8, 8, 8))
    xn = torch.nn.functional.normalize(x, dim=-1)
    assert torch.equal(rope, st_rope(xn, t, (3, 4), (8, 8, 8), normalized=True))
    assert torch.equal(rope, st_rope(x, t, (3, 4), (8, 8, 8)))
    assert cos.shape == (frames - 1, 12)
    assert torch.equal(cos, torch.linalg.vecdot(xn[:-1], xn[1:], dim=-1))
    # rotations keep the norm: the features are unit vectors
    assert torch.allclose(rope.norm(dim=-1), torch.ones(frames, 12), atol=1e-6)


@pytest.mark.parametrize("blocking", [True, False])
@pytest.mark.parametrize("dtype,dim", [(torch.float32, 24), (torch.float32, 3584), (torch.float16, 3584)])
def test_rows_on_demand_equal_the_whole_rotation_bitwise(blocking, dtype, dim):
    """``st_rope_rows_and_cosines`` rotates only the rows asked for on a CPU (a StRopeRows) and gives
    the whole rotation elsewhere; either way the rows and cosines are ``st_rope_and_cosines``'s."""
    g = torch.Generator().manual_seed(4)
    x = (3.0 * torch.randn(5, 12, dim, generator=g)).to(dtype)
    t = torch.tensor([0.0, 0.5, 1.5, 2.0, 9.0])
    sections = (8, 8, 8) if dim == 24 else DEFAULT_SECTIONS
    rope, cos = st_rope_and_cosines(x, t, (3, 4), sections)
    with cache_blocking(blocking):
        rows, cos2 = st_rope_rows_and_cosines(x, t, (3, 4), sections)
    assert isinstance(rows, StRopeRows) == blocking
    idx = torch.tensor([[59, 0, 13], [13, 7, 48]])          # any shape, any order, repeats
    assert torch.equal(rows[idx], rope.reshape(60, dim)[idx])
    assert rows[idx].shape == (2, 3, dim)
    assert torch.equal(cos2, cos)
    assert rows[torch.empty(0, dtype=torch.long)].shape == (0, dim)
    with pytest.raises(ValueError, match="grid"):
        st_rope_rows_and_cosines(x, t, (2, 4), sections)
