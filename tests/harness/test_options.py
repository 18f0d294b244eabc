"""Path tags of retentions, and a cell's options on an adapter (``cell_setting``: the Method's own
``from_setting`` with the adapter's depths and layout; the rules themselves:
tests/methods/test_from_setting.py)."""
from types import SimpleNamespace

import pytest

from replicate.harness.options import cell_setting, parse_rtag, rtag


def test_cell_setting_reads_the_adapter_depths_and_layout():
    video = SimpleNamespace(num_layers=3, vision_layers=2, newline_policy="grid")
    t = cell_setting(video, "tango", 0.1)
    assert t.applied["intra_llm"] is True and t.applied["intra_k"] == 2 and t.applied["llm_layers"] == 3
    assert t.record()["scaled"] == {"intra_k": [18, 2]} and t.record()["paper_layers"] == 28
    s = cell_setting(video, "stts", 0.3)
    assert s.applied["prune_at"] == 0 and s.label == "stts-untrained-scorer"
    assert "sink_indices" not in t.applied  # no grid named: "auto" resolves at run time


def test_retention_rules():
    with pytest.raises(ValueError, match="retention must be None"):
        cell_setting(SimpleNamespace(num_layers=3), "vanilla", 0.1)
    with pytest.raises(ValueError, match="needs a retention"):
        cell_setting(SimpleNamespace(num_layers=3), "holitom", None)
    assert rtag(None) == "full" and rtag(0.1) == "r0.10" and parse_rtag("r0.25") == 0.25
    assert parse_rtag("full") is None
    with pytest.raises(ValueError, match="bad retention tag"):
        parse_rtag("0.1")
