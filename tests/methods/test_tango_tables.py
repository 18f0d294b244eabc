"""Tango's tables and figures: README reference consistent with the claims, analytic token counts by
hand, the behaviour table on a small video, and the figure writer."""
from __future__ import annotations

import math

import pytest

from replicate.claims import CLAIMS_FILE, load_claims
from replicate.tango_tables import (
    FLOPS_COLUMNS, behaviour_effects, flops_tokens, read_readme_reference, ttft_split, write_csv,
)

T3_IDS = {"vit_ms": "tango-readme-vit-ms", "other_ms": "tango-readme-other-ms", "llm_prefill_ms": "tango-readme-llm-ms",
          "ttft_ms": "tango-readme-ttft-ms", "decode_tok_s": "tango-readme-decode-tok-s",
          "peak_mem_gb": "tango-readme-peak-mem-gb", "gpu_runtime_s": "tango-readme-gpu-runtime-s",
          "total_s": "tango-readme-total-s"}


def test_readme_csv_matches_t3_claims():
    claims = {c["id"]: c for c in load_claims(CLAIMS_FILE)}
    ref = read_readme_reference()
    assert set(ref) == set(T3_IDS)
    for quantity, cid in T3_IDS.items():
        assert claims[cid]["reported"]["value"] == ref[quantity], cid
    assert math.isclose(ref["vit_ms"] + ref["other_ms"] + ref["llm_prefill_ms"], ref["ttft_ms"], abs_tol=0.05)


def test_intra_llm_claims_state_the_official_rescaling():
    claims = {c["id"]: c for c in load_claims(CLAIMS_FILE)}
    for r, tag in ((0.10, "r10"), (0.15, "r15"), (0.20, "r20")):
        c = claims[f"tango-video-intra-pre-llm-{tag}"]
        r_pre = 28 * r / (18 + 10 * 0.5)
        assert math.isclose(c["reported"]["value"], round(100 * (1 - round(r_pre, 4)), 2))
        assert c["setting"]["method"] == "tango-intra" and c["tier"] == "analytic"


def test_flops_tokens_by_hand():
    rows = {(r["model"], r["method"], r["retention"]): r for r in flops_tokens()}
    assert len(rows) == 12
    ov = rows[("llava-onevision-7b", "tango", 0.10)]
    assert ov["llm_visual_first"] == 20 * 32 and ov["vanilla_visual"] == 6272  # ceil(0.1 * 196) per frame
    video = rows[("llava-video-7b", "tango-intra", 0.10)]
    kept = math.ceil(0.1217391 * 169) * 64  # r_pre = 2.8 / 23
    assert video["llm_visual_first"] == kept and video["stages"] == f"0-17:{kept} 18-27:{kept // 2}"
    assert abs(video["layer_avg_ratio_pct"] - 10.0) < 0.6  # the rescaling's purpose
    for model, method in (("llava-onevision-7b", "tango"), ("qwen2.5-vl-7b", "tango"),
                          ("llava-video-7b", "tango-intra")):
        fl = [rows[(model, method, r)]["paper_tflops"] for r in (0.10, 0.15, 0.20)]
        assert fl == sorted(fl) and fl[-1] < rows[(model, method, 0.2)]["vanilla_paper_tflops"]


def test_ttft_split_rows():
    rows = ttft_split()
    assert [r["method"] for r in rows] == ["vanilla", "tango", "tango"]
    assert rows[2]["vision_ms"] == 335.6 and rows[2]["llm_ms"] == 80.6
    assert rows[1]["llm_ms"] < rows[0]["llm_ms"] and rows[1]["vision_ms"] == rows[0]["vision_ms"]


def test_behaviour_table():
    rows = behaviour_effects(retentions=(0.10,), dim=32, frames=8)
    rel, pap = (next(r for r in rows if r["fidelity"] == f) for f in ("released", "paper"))
    assert rel["static_tau"] == 0.8 and pap["static_tau"] == 0.65
    assert rel["static_positions"] < pap["static_positions"]  # cos ~0.77 positions: static only at 0.65
    assert rel["tokens_kept"] != pap["tokens_kept"] and rel["paper_tflops"] > 0


@pytest.mark.slow
def test_figures(tmp_path):
    from figures.tango import write_figures

    rows = behaviour_effects(retentions=(0.10,), dim=32, frames=8)

    write_csv(flops_tokens(), tmp_path / "f.csv", FLOPS_COLUMNS)
    write_csv(ttft_split(), tmp_path / "t.csv")
    write_csv(rows, tmp_path / "b.csv")
    written = write_figures(tmp_path / "f.csv", tmp_path / "t.csv", tmp_path / "fig", tmp_path / "b.csv")
    assert all(p.exists() and p.stat().st_size > 0 for p in written) and len(written) == 6
