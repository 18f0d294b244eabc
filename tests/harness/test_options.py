"""Inner-LLM layer scaling from 28 layers and the retention -> option mapping of each method."""
import pytest

from replicate.harness.options import cell_options, method_label, parse_rtag, rtag, scale_layer


@pytest.mark.parametrize("k, layers, expected", [
    (18, 28, 18),   # identity at the paper's depth
    (18, 3, 2),     # 18*3/28 = 1.93 -> 2
    (2, 3, 1),      # 0.21 -> 0 -> max(1, .) = 1
    (7, 2, 1),      # 0.5 rounds half up to 1
    (21, 2, 1),     # 1.5 -> 2 -> clipped to L-1 = 1
    (27, 4, 3),     # 3.86 -> 4 -> clipped to 3
    (14, 4, 2),     # exactly 2.0
    (10, 3, 1),     # 1.07 -> 1
])
def test_scale_layer(k, layers, expected):
    assert scale_layer(k, layers) == expected


def test_scale_layer_rejects_bad_input():
    with pytest.raises(ValueError, match="num_layers"):
        scale_layer(2, 1)
    with pytest.raises(ValueError, match="layer index"):
        scale_layer(29, 4)


def test_cell_options_record_paper_and_applied_values():
    h = cell_options("holitom", 0.1, 3)
    assert h["paper"]["inner_k"] == 18 and h["applied"]["inner_k"] == 2
    assert h["scaled"] == {"inner_k": [18, 2]} and h["applied"]["retention"] == 0.1
    f = cell_options("fastv", 0.25, 3)
    assert f["applied"] == {"k": 1, "keep": 0.25} and f["paper"]["k"] == 2
    # pdrop: 7/14/21 of 28 -> 1/2/2 on 3 layers -> two stages, lam re-derived so the last keeps r
    p = cell_options("pdrop", 0.25, 3)
    assert p["applied"]["layers"] == [1, 2] and p["applied"]["lam"] == pytest.approx(0.5)
    assert p["paper"]["lam"] == pytest.approx(0.25 ** (1 / 3))
    # prunevid prunes after selected_layer: at most L-2
    assert cell_options("prunevid", 0.1, 2)["applied"]["selected_layer"] == 0
    assert cell_options("prunevid", 0.1, 3)["applied"]["selected_layer"] == 1
    s = cell_options("stts", 0.3, 3, vision_layers=2)
    assert s["applied"]["prune_at"] == 0 and s["paper"]["prune_at"] == 3
    assert s["applied"]["topk"] == pytest.approx(0.7)
    assert method_label("stts", s["applied"]) == "stts-untrained-scorer"
    assert cell_options("tango", 0.1, 3)["applied"]["llm_layers"] == 3
    assert cell_options("fastv", 0.1, 3, overrides={"k": 14})["applied"]["k"] == 2


def test_retention_rules():
    assert cell_options("vanilla", None, 3)["applied"] == {}
    with pytest.raises(ValueError, match="retention must be None"):
        cell_options("vanilla", 0.1, 3)
    with pytest.raises(ValueError, match="needs a retention"):
        cell_options("holitom", None, 3)
    assert rtag(None) == "full" and rtag(0.1) == "r0.10" and parse_rtag("r0.25") == 0.25
    assert parse_rtag("full") is None
    with pytest.raises(ValueError, match="bad retention tag"):
        parse_rtag("0.1")
