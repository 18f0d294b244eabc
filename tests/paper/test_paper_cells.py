"""Which cells the paper claims need, their paths, and the default (no paths) verdicts."""
from __future__ import annotations

import copy

import pytest

from replicate.claims import claims_by_id, load_claims
from replicate.paper import cells as C


@pytest.fixture(scope="module")
def claims():
    return claims_by_id()


@pytest.fixture(scope="module")
def default_config():
    from replicate.configuration import load_config

    return load_config()


def with_paths(config, **paths):
    cfg = copy.deepcopy(config)
    for key, value in paths.items():
        section, name = key.split("__")
        cfg["paths"][section][name.replace("_", "-")] = value
    return cfg


def test_perf_kept_needs_method_and_shared_vanilla_cells(claims, default_config):
    holi = C.claim_cells(claims["holitom-perf-kept-ov7b-r10"], default_config)
    tango = C.claim_cells(claims["tango-perf-kept-ov7b-r10"], default_config)
    assert sorted(c.benchmark for c in holi if c.method == "holitom") == ["egoschema", "longvideobench", "mvbench", "videomme"]
    assert {c.tag for c in holi if c.method == "holitom"} == {"holitom_r0.10_inner_k18_inner_r0.5_tau0.65"}
    # cells are keyed by protocol: HoliTom's lmms-eval 0.3.0 vanilla cells are not Tango's VLMEvalKit ones
    best_k = C.claim_cells(claims["holitom-best-k-ov7b"], default_config)
    assert not {c for c in holi if c.method == "vanilla"} & {c for c in tango if c.method == "vanilla"}
    table = C.claim_cells(claims["holitom-t1-perf-holitom-r10"], default_config)
    assert {c for c in holi if c.method == "vanilla"} == {c for c in table if c.method == "vanilla"}
    assert {c.protocol for c in holi + best_k} == {"holitom-lmms-eval-0.3.0"}
    assert {(c.protocol, c.wrapper) for c in tango} == {("tango-vlmevalkit", "llava")}
    assert all(c.summary_path.startswith("results/paper/cells/holitom-lmms-eval-0.3.0/llava-onevision-7b/f32/")
               for c in holi)


def test_llava_video_cells_run_under_llava_vid_and_72b_under_llava_onevision(claims, default_config):
    video = C.claim_cells(claims["holitom-t2-perf-video7b-holitom-r15"], default_config)
    big = C.claim_cells(claims["holitom-t2-perf-ov72b-holitom-r15"], default_config)
    assert {c.wrapper for c in video} == {"llava_vid"} and {c.wrapper for c in big} == {"llava_onevision"}
    assert {c.wrapper_spec.frame_sampling for c in video} == {"fps1_then_linspace_floor"}
    from replicate.paper.shard import protocol_record

    # HoliTom ran llava_vid with its defaults: no time instruction; Tango's VLMEvalKit LLaVA-Video has one
    assert protocol_record(video[0], {})["time_instruction"] is False
    tango = C.claim_cells(claims["tango-video-layer-avg-r10"], default_config)
    assert {protocol_record(c, {})["time_instruction"] for c in tango} == {True}
    record = protocol_record(video[0], {"paper": {"max_new_tokens": 8}})
    assert record["max_new_tokens"] == 8 and "instead of" in record["differs"]


def test_a_claim_whose_protocol_lacks_a_suite_member_is_refused_at_config_time(claims, default_config):
    from replicate.claims import ClaimsError

    cfg = copy.deepcopy(default_config)
    cfg["paper"]["suites"] = {"stts-13tasks": ["mvbench", "lvbench"]}
    cfg["paper"]["claims"] = ["holitom-perf-kept-ov7b-r10"]
    bad = copy.deepcopy(claims["holitom-perf-kept-ov7b-r10"])
    bad["setting"]["benchmarks"] = ["stts-13tasks"]
    with pytest.raises(ClaimsError, match=r"claim 'holitom-perf-kept-ov7b-r10': field 'protocol': protocol "
                                          r"'holitom-lmms-eval-0.3.0' does not define benchmark 'lvbench'; it defines"):
        C.required_cells([bad], cfg)


def test_suite_claim_expands_to_member_benchmarks_on_both_checkpoints(claims, default_config):
    cells = C.claim_cells(claims["stts-accuracy-drop-13tasks"], default_config)
    stts = [c for c in cells if c.method == "stts"]
    van = [c for c in cells if c.method == "vanilla"]
    assert {c.checkpoint for c in stts} == {"molmo2-4b-lite-50"} and {c.checkpoint for c in van} == {"molmo2-4b"}
    assert sorted(c.benchmark for c in stts) == sorted(C.DEFAULT_SUITES["stts-13tasks"])
    assert all(c.bench_tag.startswith("stts-13tasks.") for c in cells)
    assert dict(stts[0].options) == {"topk": 0.5, "prune_at": 3}


def test_no_cells_enter_the_dag_without_paths(claims, default_config):
    assert C.required_cells(claims.values(), default_config) == []
    cfg = with_paths(default_config, checkpoints__llava_onevision_7b="/x", datasets__videomme="/y")
    cells = C.required_cells(claims.values(), cfg)
    assert cells and {(c.checkpoint, c.dataset) for c in cells} == {("llava-onevision-7b", "videomme")}


def test_claims_selection_rejects_unknown_ids(claims, default_config):
    cfg = copy.deepcopy(default_config)
    cfg.setdefault("paper", {})["claims"] = ["tango-perf-kept-ov7b-r10", "no-such-claim"]
    with pytest.raises(ValueError, match="paper.claims.*no-such-claim"):
        C.selected_claims(claims.values(), cfg)


def test_cell_round_trips_through_its_dict(claims, default_config):
    for cell in C.claim_cells(claims["stts-vs-random-50"], default_config)[:3]:
        assert C.Cell.from_dict(cell.as_dict()) == cell


def test_every_paper_claim_maps_to_cells_or_says_why(default_config):
    """Every claim a paper evaluator judges has cells, except those whose benchmark has no loader."""
    for claim in load_claims():
        if claim.get("evaluator") in C.PAPER_EVALUATORS and claim["tier"] == "paper":
            if C.claim_cells(claim, default_config):
                continue
            benches = claim["setting"].get("benchmarks", [])
            with pytest.raises(ValueError, match="no loader"):
                [C.benchmark_members(b, default_config) for b in benches]


def test_default_config_says_not_run_with_the_missing_key(claims, default_config):
    from replicate.verify import verify_claim

    for cid in ("tango-perf-kept-ov7b-r10", "holitom-perf-kept-ov7b-r10", "stts-accuracy-drop-13tasks",
                "holitom-t1-acc-holitom-r10-mvbench"):
        out = verify_claim(claims[cid], config=default_config)
        assert out["verdict"] == "not-run"
        assert "config key paths.checkpoints." in out["reason"] and "is empty" in out["reason"]


def test_test_time_scaling_compares_stts_at_128_with_the_shared_vanilla_cell_at_64(claims, default_config):
    cells = C.claim_cells(claims["stts-test-time-scaling"], default_config)
    stts = {c for c in cells if c.method == "stts"}
    van = {c for c in cells if c.method == "vanilla"}
    benches = ["longvideobench", "lvbench", "mlvu", "videomme"]
    assert sorted(c.benchmark for c in stts) == benches and sorted(c.benchmark for c in van) == benches
    assert {(c.checkpoint, c.frames, c.retention) for c in stts} == {("molmo2-4b-lite-50", 128, 0.5)}
    assert {(c.checkpoint, c.frames) for c in van} == {("molmo2-4b", 64)}
    # the same LLM video-token budget: 128 frames with half the groups pruned vs 64 whole frames
    assert {round(c.frames * c.retention) for c in stts} == {c.frames for c in van}
    # VideoMME's vanilla cell at 64 frames is the one stts-accuracy-drop-videomme reads
    drop = {c for c in C.claim_cells(claims["stts-accuracy-drop-videomme"], default_config) if c.method == "vanilla"}
    assert van & drop == drop and len(drop) == 1
    # a claim without baseline_frames keeps the baseline at the method's frames
    assert {c.frames for c in C.baseline_cells(claims["stts-vs-random-50"], default_config, "random")} == {64}


@pytest.mark.parametrize("bad", [0, -64, 64.0, "64", True])
def test_bad_baseline_frames_is_an_error_naming_the_key(claims, bad):
    claim = copy.deepcopy(claims["stts-test-time-scaling"])
    claim["setting"]["baseline_frames"] = bad
    with pytest.raises(ValueError, match="baseline_frames must be a positive int"):
        C.baseline_cells(claim, {}, "vanilla")


def test_test_time_scaling_default_verdict_is_not_run_naming_the_empty_keys(claims, default_config):
    from replicate.verify import verify_claim

    out = verify_claim(claims["stts-test-time-scaling"], config=default_config)
    assert out["verdict"] == "not-run"
    assert "paths.checkpoints.molmo2-4b-lite-50 is empty" in out["reason"], out["reason"]
    assert "no loader" not in out["reason"]


def test_stts_vs_tome_default_verdict_is_not_run_naming_the_empty_keys(claims, default_config):
    from replicate.verify import verify_claim

    out = verify_claim(claims["stts-vs-tome-50"], config=default_config)
    assert out["verdict"] == "not-run"
    for key in ("checkpoints.molmo2-4b-lite-50", "checkpoints.molmo2-4b", "datasets.stts-13tasks"):
        assert f"config key paths.{key} is empty" in out["reason"], out["reason"]
