"""The `exact` convention: hand-computed rows, units, and its relation to the `paper` convention."""
import pytest

from costmodel import TokenSchedule, decode_step_costs, exact_costs, load_arch, paper_flops
from methods.nominal import nominal_schedule
from costmodel.flops import FLOPCOUNTER_KINDS, STAGES

OV = load_arch("llava-onevision-7b")
D, M, L, V = 3584, 18944, 28, 152128


def test_prefill_layer_by_hand():
    n = 1000
    s = TokenSchedule(frames=1, vision=(), projector_tokens=0, llm_visual=(n,) * L)
    t = exact_costs(OV, s, stages=("prefill",), norms=False)
    proj = n * D * (D + 512 + 512) + n * D * D  # GQA: k/v project to 4·128
    attn = 2 * n * n * D  # 28 heads · 128 = 3584, full attention
    mlp = 3 * n * D * M  # SwiGLU
    assert t.total(layer=0, unit="macs") == proj + attn + mlp
    assert t.total(unit="flops") == 2 * t.total(unit="macs") == 2 * L * (proj + attn + mlp)
    causal = exact_costs(OV, s, stages=("prefill",), norms=False, causal=True)
    assert t.total(unit="macs") - causal.total(unit="macs") == L * 2 * D * (n * n - n * (n + 1) // 2)


def test_lm_head_modes():
    s = nominal_schedule(OV, "vanilla", text_tokens=100)
    last = exact_costs(OV, s, lm_head="last").total("lm_head", unit="macs")
    every = exact_costs(OV, s, lm_head="all").total("lm_head", unit="macs")
    assert last == D * V and every == 6373 * D * V
    assert exact_costs(OV, s, lm_head="none").total("lm_head") == 0
    with pytest.raises(ValueError, match="unknown lm_head mode 'first'"):
        exact_costs(OV, s, lm_head="first")


def test_decode_sum_equals_single_steps():
    s = nominal_schedule(OV, "holitom", retention=0.1, text_tokens=20, decode_steps=3)
    table = exact_costs(OV, s, stages=("decode",))
    # decode_step_costs takes the *cached* length; step i has kv_lengths + i cached (kv_at_step adds the new token)
    steps = [decode_step_costs(OV, [k + i for k in s.kv_lengths], lm_head=True) for i in range(3)]
    assert table.total("decode") == sum(t.total("decode") for t in steps)
    one = decode_step_costs(OV, 1000, norms=False)
    per_layer = D * (D + 1024) + D * D + 3 * D * M + 2 * 1001 * D
    assert one.total(unit="macs") == L * per_layer


def test_exact_vs_paper_relationship():
    """GQA projections (2.29·n·d² instead of 4·n·d²) make exact's projections smaller than the
    paper's; SwiGLU's third matrix makes the MLP 1.5x larger."""
    s = nominal_schedule(OV, "vanilla")
    t = exact_costs(OV, s, stages=("prefill",), norms=False)
    n = 6273  # visual + newline
    proj = t.total("prefill", unit="macs", layer=0) - 3 * n * D * M - 2 * n * n * D
    assert proj / (n * D * D) == pytest.approx(2 + 2 * 512 / D)
    assert proj < 4 * n * D * D
    paper = paper_flops(OV, s)
    exact_prefill = t.total("prefill", unit="macs")
    assert 1.1 < exact_prefill / paper < 1.4  # SwiGLU dominates GQA savings at this size


def test_vision_siglip_layer_by_hand():
    s = nominal_schedule(OV, "vanilla", frames=2)
    t = exact_costs(OV, s, stages=("vision",))
    n, Dv, I = 729, 1152, 4304
    layer = 2 * (4 * n * Dv * Dv + 2 * n * n * Dv + 2 * n * Dv * I)
    assert t.total("vision", unit="macs", layer=5, kinds=FLOPCOUNTER_KINDS) == layer
    assert t.total("vision", unit="macs", layer=-1) == 2 * n * 588 * Dv  # patch conv: 3·14·14 = 588


def test_stages_and_units_never_mix():
    s = nominal_schedule(OV, "vanilla", text_tokens=10, decode_steps=2)
    t = exact_costs(OV, s)
    assert set(t.by_stage()) == set(STAGES)
    assert sum(t.by_stage().values()) == t.total()
    assert t.total(unit="flops") == 2 * t.total(unit="macs")
    df = t.to_frame()
    assert (df["flops"] == 2 * df["macs"]).all() and df["macs"].sum() == t.total(unit="macs")
    with pytest.raises(ValueError, match="unknown unit 'tflops'"):
        t.total(unit="tflops")
    with pytest.raises(ValueError, match="unknown stage 'llm'"):
        t.total("llm")


def test_pooling_rows():
    ov = exact_costs(OV, nominal_schedule(OV, "vanilla"), stages=("pooling",))
    assert ov.total(unit="macs") == 4 * 32 * 196 * D  # fvcore's upsample_bilinear2d convention
    molmo = load_arch("molmo2-4b")
    s = nominal_schedule(molmo, "stts", frames=4)
    pool = exact_costs(molmo, s, stages=("pooling",)).total(unit="macs")
    g = s.llm_visual[0]
    assert pool == g * 2304 * 1152 * (1 + 9 + 9) + 2 * g * 9 * 1152 + g * 1152 * 1152


def test_pruning_reduces_every_stage_it_touches():
    full = exact_costs(OV, nominal_schedule(OV, "vanilla", decode_steps=5))
    pruned = exact_costs(OV, nominal_schedule(OV, "holitom", retention=0.1, decode_steps=5))
    assert pruned.total("vision") == full.total("vision")  # pre-LLM methods keep the ViT
    assert pruned.total("prefill") < 0.1 * full.total("prefill")
    assert pruned.total("decode") < full.total("decode")
    molmo = load_arch("molmo2-4b")
    stts = exact_costs(molmo, nominal_schedule(molmo, "stts"))
    base = exact_costs(molmo, nominal_schedule(molmo, "vanilla"))
    assert 0.5 < stts.total("vision") / base.total("vision") < 0.7  # 5 of 25 blocks full, 20 at ~half


def test_depth_mismatch_raises():
    s = TokenSchedule(frames=1, vision=(), projector_tokens=0, llm_visual=(10,) * 3)
    with pytest.raises(ValueError, match="3 LLM layers, llava-onevision-7b has 28"):
        exact_costs(OV, s)
