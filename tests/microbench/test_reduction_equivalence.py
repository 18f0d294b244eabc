"""The equivalence check against an earlier commit flags what differs and refuses a folder with no
``methods`` package (the comparison itself: docs/measured/reduction_equivalence_*.json)."""
from __future__ import annotations

import pytest
import torch

from replicate.microbench.reduction_equivalence import cases, compare, main


def test_compare_flags_index_and_feature_differences():
    src, feats = torch.arange(4), torch.ones(4, 3)
    old = {"same": (src, feats), "moved": (src, feats), "drift": (src, feats)}
    new = {"same": (src.clone(), feats.clone()), "moved": (src.flip(0), feats),
           "drift": (src, feats + torch.tensor([0.0, 0.0, 2e-6]))}
    res = compare(old, new, atol=1e-6)
    assert res["same"]["ok"] and res["same"]["max_abs_diff"] == 0.0
    assert not res["moved"]["indices_equal"] and not res["moved"]["ok"]
    assert res["drift"]["indices_equal"] and not res["drift"]["ok"]
    assert res["drift"]["max_abs_diff"] == pytest.approx(2e-6, rel=0.05)   # fp32 of 1 + 2e-6


def test_cases_cover_the_batched_reductions_on_every_input():
    labels = [c["label"] for c in cases(["llava-ov-7b"], None, 16)]
    # per input: holitom, prunevid at 0.10 and 0.25; tango, visionzip, fastvid there in both of their
    # fidelities; dycoke at 0.25 only
    assert len(labels) == 3 * (2 * 2 + 3 * 2 * 2 + 1)
    assert "llava-ov-7b/dycoke/r=0.25/cut-2" in labels and "llava-ov-7b/dycoke/r=0.1/cut-2" not in labels
    assert {"llava-ov-7b/fastvid/r=0.1/no-cut/released", "llava-ov-7b/fastvid/r=0.1/no-cut/project",
            "llava-ov-7b/tango/r=0.1/cut-8/paper", "llava-ov-7b/visionzip/r=0.25/cut-2/project"} <= set(labels)
    fastvid = next(c for c in cases(["llava-ov-7b"], ["fastvid"], 16) if c["label"].endswith("/project"))
    assert fastvid["options"]["fidelity"] == "project"


def test_cli_rejects_a_folder_without_methods(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--old-tree", str(tmp_path), "--out", str(tmp_path / "x.json")])
    assert "no methods/__init__.py" in capsys.readouterr().err


def test_the_matmul_path_keeps_every_gemm_off_onednn(onednn_calls):
    """The third path (CPU blocking on, GEMMs through torch.matmul) is what separates a difference made
    by oneDNN's rounding from one made by the code: it must really leave oneDNN out."""
    from replicate.microbench.reduction_equivalence import reduce_all

    calls = onednn_calls
    spec = [c for c in cases(["llava-ov-7b"], ["tango"], 16) if c["label"].endswith("cut-2/released")]
    with_onednn = reduce_all(spec, True)
    assert calls
    calls.clear()
    without = reduce_all(spec, True, onednn=False)
    assert not calls and set(without) == set(with_onednn)
