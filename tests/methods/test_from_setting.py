"""``Method.from_setting``: one function per method turns a paper's setting into its options, the
paper's values and those applied to the model (inner-LLM layer indices scaled from the paper's
28-layer notation), recorded alike by every tier (tests/replicate/test_setting_sweep.py holds the
tiers to it)."""
import pytest

from methods.registry import method_class
from methods.setting import PaperSetting, scale_layer


def opts(method, retention, layers=3, **kw):
    return method_class(method).from_setting(PaperSetting(retention, llm_layers=layers, **kw))


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


def test_paper_and_applied_values_are_recorded():
    h = opts("holitom", 0.1)
    assert h.paper["inner_k"] == 18 and h.applied["inner_k"] == 2
    assert h.scaled == {"inner_k": [18, 2]} and h.applied["retention"] == 0.1
    f = opts("fastv", 0.25)
    assert f.applied == {"k": 1, "keep": 0.25} and f.paper["k"] == 2
    # pdrop: 7/14/21 of 28 -> 1/2/2 on 3 layers -> two stages, lam re-derived so the last keeps r
    p = opts("pdrop", 0.25)
    assert p.applied["layers"] == [1, 2] and p.applied["lam"] == pytest.approx(0.5)
    assert p.paper["lam"] == pytest.approx(0.25 ** (1 / 3))
    # prunevid prunes after selected_layer: at most L-2
    assert opts("prunevid", 0.1, 2).applied["selected_layer"] == 0
    assert opts("prunevid", 0.1, 3).applied["selected_layer"] == 1
    s = opts("stts", 0.3, vision_layers=2)
    assert s.applied["prune_at"] == 0 and s.paper["prune_at"] == 3
    assert s.applied["topk"] == pytest.approx(0.7) and s.label == "stts-untrained-scorer"
    assert opts("tango", 0.1).applied["llm_layers"] == 3
    assert opts("fastv", 0.1, options={"k": 14}).applied["k"] == 2
    assert set(h.record()) == {"paper", "applied", "scaled", "notes", "paper_layers", "num_layers"}


def test_retention_kinds():
    assert opts("vanilla", None).applied == {}
    with pytest.raises(ValueError, match="retention must be None"):
        opts("vanilla", 0.1)
    with pytest.raises(ValueError, match="needs a retention"):
        opts("holitom", None)
    # pdrop without a retention: the default schedule's last stage, 0.5^3, kept on a shallow LLM too
    p = opts("pdrop", None)
    assert p.applied["lam"] == pytest.approx(0.125 ** 0.5) and p.paper["lam"] == pytest.approx(0.5)
    assert opts("fastv", None).applied == {"k": 1}  # keep: its default
    assert opts("stts", None, options={"topk": 0.5}).applied["topk"] == 0.5


def test_a_priced_setting_counts_what_the_papers_tables_count():
    """The analytic tier prices the papers' numbers: PruneVid's FLOPs column is its pre-LLM stages;
    PDrop's tables publish no retention, so none is mapped onto its lam."""
    assert opts("prunevid", 0.25, 28, priced=True).applied["selected_layer"] is None
    assert opts("prunevid", 0.25, 28).applied["selected_layer"] == 10
    with pytest.raises(ValueError, match="pdrop takes no retention in a priced setting"):
        opts("pdrop", 0.1, 28, priced=True)
    assert opts("pdrop", None, 28, priced=True).applied == {"layers": [7, 14, 21]}


def test_the_model_layout_adds_what_the_paper_states_for_it():
    video = opts("tango", 0.1, 28, newline="grid")
    ov = opts("tango", 0.1, 28, newline="one_token")
    assert video.applied["intra_llm"] is True and video.applied["intra_keep"] == 0.5 and video.applied["intra_k"] == 18
    assert "intra_llm" not in ov.applied
    off = opts("tango", 0.1, 28, newline="grid", options={"intra_llm": False})
    assert off.applied["intra_llm"] is False                      # an explicit option wins
    assert "intra_llm" not in opts("holitom", 0.1, 28, newline="grid").applied


def test_tango_sinks_are_those_of_the_grid_and_layout():
    """One rule (methods.tango.setting_sinks): keyed by the pooled grid and the newline layout."""
    from methods.tango import OV_SINKS, VIDEO_SINKS

    assert opts("tango", 0.1, 28, grid=(14, 14), newline="one_token").applied["sink_indices"] == list(OV_SINKS)
    assert opts("tango", 0.1, 28, grid=(13, 13), newline="grid").applied["sink_indices"] == list(VIDEO_SINKS)
    assert opts("tango", 0.1, 28, grid=(14, 14), newline="none").applied["sink_indices"] == []  # Qwen: none
    assert "sink_indices" not in opts("tango", 0.1, 28).applied  # "auto": resolved from the tokens


def test_the_method_builds_from_the_applied_options():
    m = opts("holitom", 0.1).build()
    assert m.config.inner_k == 2 and m.config.retention == 0.1
    with pytest.raises(ValueError, match="tau"):
        opts("holitom", 0.1, options={"tau": 2.0}).build()
