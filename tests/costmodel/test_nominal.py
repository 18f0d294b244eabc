"""Nominal TokenSchedules: token counts per layer, error messages, serialisation."""
import math

import pytest

from costmodel import TokenSchedule, VisionLoad, load_arch
from methods.nominal import nominal_names, nominal_schedule

OV = load_arch("llava-onevision-7b")
VID = load_arch("llava-video-7b")
MOLMO = load_arch("molmo2-4b")
QWEN = load_arch("qwen2.5-vl-7b")


def test_vanilla_ov_counts():
    s = nominal_schedule(OV, "vanilla", text_tokens=100)
    assert s.frames == 32 and s.llm_visual == (6272,) * 28
    assert s.llm_newline == (1,) * 28  # one_token
    assert s.llm_prefill[0] == 6373
    assert s.vision == (VisionLoad(32, 729),) * 26  # 26 SigLIP layers run
    assert s.projector_tokens == 32 * 729  # LLaVA projects before pooling


def test_llava_video_grid_newlines():
    full = nominal_schedule(VID, "vanilla")
    assert full.frames == 64 and full.llm_visual[0] == 64 * 169 and full.llm_newline[0] == 64 * 13
    pruned = nominal_schedule(VID, "visionzip", retention=0.1)
    assert pruned.llm_newline[0] == 64 * 13  # upper bound min(F·h, kept) = min(832, 1082)
    tiny = nominal_schedule(VID, "visionzip", frames=64, retention=0.01)
    assert tiny.llm_newline[0] == tiny.llm_visual[0] == 108  # a row needs a kept token


@pytest.mark.parametrize("method,options", [("visionzip", {}), ("prunevid", {"selected_layer": None}),
                                            ("fastvid", {}), ("dycoke", {}), ("holitom-wo-m", {}), ("tango", {}),
                                            ("random", {})])
def test_pre_llm_methods_keep_round_r_f_n(method, options):
    s = nominal_schedule(OV, method, retention=0.15, **options)
    assert s.llm_visual == (941,) * 28  # round(0.15·6272 = 940.8)
    assert nominal_schedule(OV, method, retention=0.15, budget="per_frame", **options).llm_visual[0] == 32 * 30


def test_prunevid_stage_4_and_uniform_pool_own_counts():
    """PruneVid's default keeps alpha=0.4 of the 941 from layer selected_layer+1 = 11 on; uniform
    pooling keeps F·h'·w' with h' = w' = round(14·sqrt(0.15)) = 5 (no budget rounding applies)."""
    s = nominal_schedule(OV, "prunevid", retention=0.15)
    assert s.llm_visual == (941,) * 11 + (round(941 * 0.4),) * 17
    # priced as HoliTom's FLOPs column prices PruneVid: its pre-LLM stages only
    assert nominal_schedule(OV, "prunevid", retention=0.15, priced=True).llm_visual == (941,) * 28
    for budget in ("global", "per_frame"):
        assert nominal_schedule(OV, "uniform-pool", retention=0.15, budget=budget).llm_visual == (32 * 25,) * 28


def test_fastv_defaults_and_table_setting():
    assert nominal_schedule(OV, "fastv").llm_visual == (6272,) * 2 + (3136,) * 26  # k=2, R=0.5
    assert nominal_schedule(OV, "fastv", retention=0.2).llm_visual[2:] == (1254,) * 26
    assert nominal_schedule(OV, "fastv", keep=0.25, k=3).llm_visual == (6272,) * 3 + (1568,) * 25
    with pytest.raises(ValueError, match="either retention"):
        nominal_schedule(OV, "fastv", retention=0.2, keep=0.25)


def test_pdrop_stages():
    s = nominal_schedule(OV, "pdrop")
    assert s.llm_visual == (6272,) * 7 + (3136,) * 7 + (1568,) * 7 + (784,) * 7
    with pytest.raises(ValueError, match="pdrop takes no retention in a priced setting"):
        nominal_schedule(OV, "pdrop", retention=0.5, priced=True)
    # run (not priced): the retention is what the last stage keeps, lam = r^(1/3)
    assert nominal_schedule(OV, "pdrop", retention=0.125).llm_visual == s.llm_visual
    with pytest.raises(ValueError, match="strictly increasing"):
        nominal_schedule(OV, "pdrop", layers=(9, 4, 20))


def test_holitom_inner_merge():
    s = nominal_schedule(OV, "holitom", retention=0.1)
    assert s.llm_visual == (627,) * 18 + (314,) * 10  # round_half_up(313.5)


def test_tango_intra_layer_average_equals_target():
    for r, r_pre in [(0.10, 0.1217), (0.15, 0.1826), (0.20, 0.2435)]:  # docs/sources.md#tango-intra-llm
        s = nominal_schedule(VID, "tango-intra", retention=r)
        assert s.llm_visual[0] / (64 * 169) == pytest.approx(r_pre, abs=2e-4)
        assert sum(s.llm_visual) / (28 * 64 * 169) == pytest.approx(r, abs=1e-3)
        assert s.llm_visual[18] == round(s.llm_visual[0] * 0.5 + 1e-9)


def test_stts_vit_bins_and_llm_tokens():
    s = nominal_schedule(MOLMO, "stts", frames=128)
    pruned = round(81 * 0.5 * 128)  # 5184 groups of 9 patches
    kept_patches = 729 * 128 - 9 * pruned
    assert s.llm_visual == (81 * 128 - pruned,) * 36
    assert s.vision[:5] == (VisionLoad(128, 729),) * 5  # blocks <= prune_at + 1 = 4 run in full
    assert s.vision[5:] == (VisionLoad(math.ceil(kept_patches / 729), 729),) * 20
    assert s.vision[5].sequences == 64
    # the first frame is always kept: with 1 frame nothing is pruned
    one = nominal_schedule(MOLMO, "stts", frames=1)
    assert one.llm_visual[0] == 81 and one.vision[-1] == VisionLoad(1, 729)
    assert nominal_schedule(MOLMO, "stts", frames=8, retention=0.7).llm_visual[0] == round(81 * 8 * 0.7)


def test_qwen_window_attention_loads():
    s = nominal_schedule(QWEN, "vanilla", frames=4)
    assert s.vision[7] == VisionLoad(4, 1024)  # full-attention block
    assert s.vision[0] == VisionLoad(4 * 16, 64)  # 8x8-patch windows
    assert s.llm_newline[0] == 0 and s.llm_visual[0] == 4 * 256
    pruned = nominal_schedule(QWEN, "visionzip", frames=4, retention=0.1)
    assert pruned.llm_visual[0] == 102 and pruned.projector_tokens == 4 * 256  # the merger sees all


@pytest.mark.parametrize("retention", [0, -0.1, 1.01, 2])
def test_bad_retention(retention):
    with pytest.raises(ValueError, match=r"retention must be in \(0, 1\]"):
        nominal_schedule(OV, "visionzip", retention=retention)


def test_errors_name_bad_value_and_allowed():
    with pytest.raises(ValueError, match="unknown method 'nope'; allowed: .*stts.*vanilla.*tango-intra"):
        nominal_schedule(OV, "nope")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['q'\] for method 'holitom'.*'inner_k'"):
        nominal_schedule(OV, "holitom", retention=0.1, q=3)
    with pytest.raises(ValueError, match="frames must be an int >= 1, got 0"):
        nominal_schedule(OV, "vanilla", frames=0)
    with pytest.raises(ValueError, match=r"tango needs a retention in \(0, 1\]"):
        nominal_schedule(OV, "tango")
    with pytest.raises(ValueError, match="unknown budget 'x'"):
        nominal_schedule(OV, "tango", retention=0.1, budget="x")
    with pytest.raises(ValueError, match="option inner_k must be an int layer index"):
        nominal_schedule(OV, "holitom", retention=0.1, inner_k=99)


@pytest.mark.parametrize("method", list(nominal_names()))
def test_every_method_builds_and_round_trips(method):
    arch = MOLMO if method == "stts" else OV
    kwargs = {} if method in ("vanilla", "pdrop", "fastv", "stts") else {"retention": 0.2}
    s = nominal_schedule(arch, method, text_tokens=50, decode_steps=3, **kwargs)
    assert s.llm_layers == arch.llm.layers
    assert all(0 < n <= s.frames * arch.tokens_per_frame for n in s.llm_visual)
    assert list(s.llm_visual) == sorted(s.llm_visual, reverse=True)  # tokens never come back
    assert TokenSchedule.from_dict(s.to_dict()) == s
    assert TokenSchedule.from_dict(__import__("json").loads(s.to_json())) == s


def test_lookup_is_the_registry_method_with_its_defaults():
    """One set of defaults: the name-keyed schedule is the registered Method's, configured alike."""
    from methods.nominal import nominal_method
    from methods.registry import get_method

    assert nominal_method(OV, "holitom", 0.1).config == get_method("holitom", retention=0.1).config
    intra = nominal_method(OV, "tango-intra", 0.1).config
    assert intra == get_method("tango", retention=0.1, intra_llm=True).config
    assert nominal_method(MOLMO, "stts", 0.7).config.topk == pytest.approx(0.3)
    assert get_method("holitom", retention=0.1).pre_llm_budget and not get_method("fastv").pre_llm_budget
    for name, r in (("holitom", 0.1), ("fastv", None), ("pdrop", None), ("tango-intra", 0.2)):
        kw = {} if r is None else {"retention": r}
        assert (nominal_schedule(VID, name, **kw).llm_visual
                == nominal_method(VID, name, r).nominal_schedule(VID).llm_visual)
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        nominal_method(OV, "nope")
