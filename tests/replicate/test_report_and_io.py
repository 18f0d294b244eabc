"""REPORT.md / README snippet rendering and atomic writes."""
from __future__ import annotations

import pytest

from replicate import io
from replicate.report import counts, render_readme_table, render_report


def _res(cid, verdict, measured=None, paper="holitom", reason="r"):
    return {"id": cid, "paper": paper, "quantity": "flops_ratio", "reported": 6.9, "measured": measured,
            "unit": "%", "verdict": verdict, "reason": reason, "tier": "analytic", "setting": {"note": "why"}}


def test_report_counts_and_rows():
    results = [_res("a", "confirmed", 6.91), _res("b", "refuted", 9.0), _res("c", "not-run", reason="no GPU"),
               _res("d", "not-run", reason="no GPU", paper="stts")]
    assert counts(results) == {"confirmed": 1, "refuted": 1, "not-run": 2}
    text = render_report(results, headline=["a"])
    assert "4 claims: 1 confirmed, 1 refuted, 2 not-run." in text
    assert "| a | holitom | flops_ratio | 6.9 % | 6.91 % | confirmed | r |" in text
    assert "- `b`: reported 6.9 %, measured 9 % (r). why" in text
    assert "- 2 x no GPU" in text
    assert text.count("| a | holitom |") == 2  # headline table + all claims


def test_readme_table_lists_headline_in_order():
    results = [_res("a", "confirmed", 6.91), _res("b", "not-run")]
    text = render_readme_table(results, ["b", "a"])
    lines = [l for l in text.splitlines() if l.startswith("| `")]
    assert lines[0].startswith("| `b` |") and lines[1] == "| `a` | holitom | 6.9 % | 6.91 % | confirmed |"


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out" / "x.json"
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert not target.exists() and list(target.parent.iterdir()) == []
    io.write_json(target, {"a": 1})
    assert target.read_text() == '{\n  "a": 1\n}\n' and len(list(target.parent.iterdir())) == 1
