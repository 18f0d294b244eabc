"""The claim registry: schema, required ids, generated cells, consistency with the reported CSVs."""
from __future__ import annotations

import copy
import csv

import pytest

from replicate.claims import (ANALOGUE_HEADLINE_IDS, HEADLINE_IDS, REPORTED_DIR, ClaimsError, load_claims,
                              ratio_rounding_band, validate_claim)


@pytest.fixture(scope="module")
def claims():
    return {c["id"]: c for c in load_claims()}


def _rows(name):
    with open(REPORTED_DIR / name, newline="") as fh:
        return list(csv.DictReader(fh))


def test_registry_is_valid_and_has_every_headline_claim(claims):
    missing = [i for i in HEADLINE_IDS if i not in claims]
    assert not missing, missing
    assert {claims[i]["paper"] for i in HEADLINE_IDS} == {"tango", "stts", "holitom"}


def test_every_claims_table_row_is_present(claims):
    refs = {c.get("ref") for c in claims.values()}
    for ref in ["H1", "H2", "H3", "H4", "H5", "H6", "T1", "T2", "T3", "T4",
                "S1", "S2", "S3", "S4", "S5", "S6", "S7"]:
        assert ref in refs, ref


def test_headline_tiers_are_not_cpu_and_analytic_ones_name_an_evaluator(claims):
    assert all(claims[i]["tier"] != "cpu" for i in HEADLINE_IDS)
    assert all(claims[i]["tier"] == "cpu" for i in ANALOGUE_HEADLINE_IDS)  # labelled analogues
    from replicate.evaluators import EVALUATORS

    for c in claims.values():
        if c["tier"] == "analytic":
            assert c.get("evaluator") in EVALUATORS, c["id"]


def test_analytic_tiers_of_headline_claims(claims):
    assert claims["holitom-flops-ov7b-r10"]["tier"] == "analytic"
    assert claims["holitom-outer-reduction-r10"]["tier"] == "analytic"
    assert claims["stts-tokens-pruned-50"]["tier"] == "analytic"
    assert claims["holitom-ttft-ov7b-r10"]["tier"] == "gpu"
    assert claims["holitom-perf-kept-ov7b-r10"]["tier"] == "paper"


def test_main_table_cells_are_generated_one_claim_per_number(claims):
    rows = _rows("holitom_main.csv")
    flops = [c for c in claims if c.startswith("holitom-t1-flops-")]
    ratio = [c for c in claims if c.startswith("holitom-t1-ratio-")]
    acc = [c for c in claims if c.startswith("holitom-t1-acc-")]
    assert len(flops) == len(rows) == 24
    assert len(ratio) == 23  # vanilla's 100 % is the reference, not a claim
    benches = ("mvbench", "egoschema", "longvideobench", "videomme", "avg")
    assert len(acc) == sum(1 for r in rows for b in benches if r[b])  # '-' cells are not claims
    c = claims["holitom-t1-acc-holitom-r10-egoschema"]
    assert c["reported"]["value"] == 61.2 and c["setting"]["benchmarks"] == ["egoschema"]
    assert c["tier"] == "paper"
    assert "holitom-t1-acc-fastvid-r10-egoschema" not in claims


def test_generated_cells_equal_the_csv(claims):
    for name, prefix, with_model in (("holitom_main.csv", "holitom-t1", False),
                                     ("holitom_backbones.csv", "holitom-t2", True)):
        short = {"llava-onevision-7b": "ov7b", "llava-onevision-72b": "ov72b", "llava-video-7b": "video7b"}
        for row in _rows(name):
            pre = int(row["pre_llm_pct"])
            tag = (f"{short[row['model']]}-" if with_model else "") + row["method"] + ("" if pre == 100 else f"-r{pre:02d}")
            assert claims[f"{prefix}-flops-{tag}"]["reported"]["value"] == float(row["flops_t"])
            if row["method"] != "vanilla":
                assert claims[f"{prefix}-ratio-{tag}"]["reported"]["value"] == float(row["flops_ratio_pct"])
            if row["avg"]:
                assert claims[f"{prefix}-acc-{tag}-avg"]["reported"]["value"] == float(row["avg"])


def test_headline_restatements_equal_their_cells(claims):
    restated = [c for c in claims.values() if c.get("same_as")]
    assert len(restated) >= 2
    for c in restated:
        cell = claims[c["same_as"]]
        assert c["reported"]["value"] == cell["reported"]["value"], c["id"]
        assert c["quantity"] == cell["quantity"]


def test_derived_speedups_follow_from_the_figure_csvs(claims):
    ttft = {r["method"]: r for r in _rows("holitom_ttft.csv")}
    total = {m: sum(float(ttft[m][k]) for k in ("vit_ms", "other_ms", "llm_ms")) for m in ttft}
    assert total["vanilla"] == 1687 and total["holitom"] == 741
    assert round(total["vanilla"] / total["holitom"], 2) == claims["holitom-ttft-ov7b-r10"]["reported"]["value"]
    assert round(total["vanilla"] / total["holitom-wo-m"], 2) == claims["holitom-ttft-wo-m-ov7b-r10"]["reported"]["value"]
    dec = {r["method"]: float(r["tok_s"]) for r in _rows("holitom_decode.csv")}
    assert round(dec["holitom"] / dec["vanilla"], 2) == claims["holitom-decode-ov7b-r10"]["reported"]["value"]
    for d in claims["holitom-ttft-ov7b-r10"]["derived_from"]:
        assert d in claims
    ks = {int(r["k"]): float(r["avg"]) for r in _rows("holitom_k_sweep.csv")}
    assert max(ks, key=ks.get) == claims["holitom-best-k-ov7b"]["reported"]["value"]


def test_ratio_band_is_the_propagated_rounding_of_both_printed_values():
    # 2.8/40.8: 100*(0.05/40.8 + 2.8*0.05/40.8**2) = 0.1309 pp, + 0.05 pp for printing the ratio
    assert ratio_rounding_band(2.8, 40.8) == 0.19
    assert ratio_rounding_band(86.4, 429.3) == 0.07


def test_table_settings_carry_the_method_options(claims):
    s = claims["holitom-t1-flops-holitom-r10"]["setting"]
    assert (s["k"], s["r"], s["retention"], s["tau"], s["frames"]) == (18, 0.5, 0.1, 0.65, 32)
    assert claims["holitom-t1-flops-holitom-r20"]["setting"]["tau"] == 0.8
    assert claims["holitom-t2-flops-ov72b-holitom-r15"]["setting"]["k"] == 60
    assert claims["holitom-t2-flops-video7b-holitom-r15"]["setting"]["frames"] == 64
    assert claims["holitom-t1-flops-fastv"]["setting"]["retention"] == 0.2


# ---------------------------------------------------------------- malformed files
def test_missing_field_names_the_claim_and_the_field(claims_doc, write_claims):
    doc = copy.deepcopy(claims_doc)
    del doc["claims"][0]["tolerance"]
    with pytest.raises(ClaimsError, match=r"holitom-flops-ov7b-r10.*'tolerance'"):
        load_claims(write_claims(doc))


def test_bad_tier_names_the_claim_and_the_field(claims_doc, write_claims):
    doc = copy.deepcopy(claims_doc)
    doc["claims"][1]["tier"] = "cloud"
    with pytest.raises(ClaimsError, match=r"holitom-perf-kept-ov7b-r10.*field 'tier'.*cloud"):
        load_claims(write_claims(doc))


def test_duplicate_id_is_rejected(claims_doc, write_claims):
    doc = copy.deepcopy(claims_doc)
    doc["claims"].append(copy.deepcopy(doc["claims"][0]))
    with pytest.raises(ClaimsError, match=r"holitom-flops-ov7b-r10.*field 'id'.*duplicate"):
        load_claims(write_claims(doc))


def test_duplicate_between_hand_written_and_generated_is_rejected(claims_doc, write_claims):
    doc = copy.deepcopy(claims_doc)
    doc["claims"][0]["id"] = "holitom-t1-flops-vanilla"
    with pytest.raises(ClaimsError, match="holitom-t1-flops-vanilla.*duplicate"):
        load_claims(write_claims(doc))


def test_tolerance_needs_exactly_one_of_abs_or_rel(claims_doc, write_claims):
    doc = copy.deepcopy(claims_doc)
    doc["claims"][0]["tolerance"]["rel"] = 0.1
    with pytest.raises(ClaimsError, match=r"holitom-flops-ov7b-r10.*tolerance.*exactly one of 'abs' or 'rel'"):
        load_claims(write_claims(doc))


def test_unknown_field_is_rejected():
    from replicate.claims import claims_by_id

    claim = copy.deepcopy(claims_by_id()["stts-tokens-pruned-50"])
    claim["reportd"] = 1
    with pytest.raises(ClaimsError, match=r"stts-tokens-pruned-50.*'reportd' was unexpected"):
        validate_claim(claim)
