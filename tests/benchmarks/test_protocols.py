"""Evaluation protocols as data: what each names, bad input refused at claims-load time, and the
strings of protocols whose release is not on PyPI (VLMEvalKit), worked out by hand from its source
(xjtupanda/Tango@cc815b6 VLMEvalKit/vlmeval/dataset/*.py and vlm/llava/llava.py).

The lmms-eval protocols are compared with the releases' own code in tests/parity (marker parity)."""
from __future__ import annotations

import copy

import pytest

from replicate.benchmarks.base import MCQSample
from replicate.benchmarks.protocol_rules import AGGREGATIONS, EXTRACTION_RULES, PROMPTS, extract, prompt_for
from replicate.benchmarks.protocols import FRAME_SAMPLING, PROTOCOLS, get_protocol
from replicate.claims import ClaimsError, check_protocol, claims_by_id


def _sample(bench="videomme", options=("apples", "candles", "berries", "pears"), answer=1, **meta):
    return MCQSample(bench, "q1", "/v.mp4", "Which fruit?", list(options), answer, dict(meta))


def test_every_protocol_rule_exists_and_names_its_source():
    for p in PROTOCOLS.values():
        assert p.summary and p.seed_source and p.differs_from_newest
        for name, rule in p.tasks.items():
            assert rule.benchmark == name and rule.prompt in PROMPTS and rule.extract in EXTRACTION_RULES
            assert rule.aggregate in AGGREGATIONS and rule.unit in ("percent", "fraction") and rule.source
        for w in p.wrappers.values():
            assert w.frame_sampling in FRAME_SAMPLING and w.models and w.source


def test_holitom_protocol_is_lmms_eval_030_with_both_wrappers():
    p = get_protocol("holitom-lmms-eval-0.3.0")
    assert set(p.tasks) == {"videomme", "mvbench", "egoschema", "longvideobench"}  # its scripts' --tasks
    assert p.wrapper_for("llava-onevision-72b").name == "llava_onevision"
    assert p.wrapper_for("llava-video-7b").name == "llava_vid"
    assert p.max_new_tokens("egoschema", p.wrappers["llava_onevision"]) == 1024  # no generation_kwargs in 0.3.0
    assert p.max_new_tokens("longvideobench", p.wrappers["llava_vid"]) == 32
    assert p.task("egoschema").offline.startswith("protocol differs: public subset")
    s = _sample(options_raw=["A. apples", "B. candles ", "C.  berries", "D. pears"])
    # lmms-eval prints VideoMME's options as stored (trailing / double spaces kept); llava_vid's post prompt
    assert prompt_for(s, p, "llava_vid").endswith("\nA. apples\nB. candles \nC.  berries\nD. pears\nThe best answer is:")
    assert prompt_for(s, p, "llava_onevision").endswith(
        "D. pears\n\nAnswer with the option's letter from the given choices directly.")


def test_tango_accuracy_protocol_is_its_vlmevalkit_strings():
    """Worked out by hand from VLMEvalKit at Tango@cc815b6: the LLaVA wrapper concatenates the text
    messages of build_prompt with nothing between them."""
    p = get_protocol("tango-vlmevalkit")
    mvb = _sample("mvbench", options=("Took the towel.", "Opened the door."), answer=1, subtask="action_sequence")
    assert prompt_for(mvb, p) == (
        "Carefully watch the video and pay attention to the cause and sequence of events, the detail and "
        "movement of objects, and the action and pose of persons. Based on your observations, select the best "
        "option that accurately addresses the question.\n"
        "Question: Which fruit?\nOptions:\n(A) Took the towel.\n(B) Opened the door."
        "\nOnly give the best option.Best option:(")
    mlvu = _sample("mlvu", options=("2", "3", "4", "5"), answer=2, task="count")
    assert prompt_for(mlvu, p) == (
        "Carefully watch this video and pay attention to every detail. Based on your observations, select the "
        "best option that accurately addresses the question.Question: Which fruit?\nOptions:\n(A) 2\n(B) 3\n(C) 4"
        "\n(D) 5\nOnly give the best option.")
    vmme = _sample(options_raw=["A. apples", "B. candles", "C. berries", "D. pears"])
    assert prompt_for(vmme, p) == (
        "\nThese are the frames of a video. Select the best answer to the following multiple-choice question "
        "based on the video. Respond with only the letter (A, B, C, or D) of the correct option.\n"
        "Question: Which fruit?\nA. apples\nB. candles\nC. berries\nD. pears\nAnswer: ")
    lvb = _sample("longvideobench")
    assert prompt_for(lvb, p) == ("Which fruit?\nA. apples\nB. candles\nC. berries\nD. pears\n"
                                  "Answer with the option's letter from the given choices directly.")
    # VLMEvalKit's Video-MME regex also drops 'Answer:' and 'Option:' (lmms-eval's does not)
    assert extract("vlmeval_prefix_regex", vmme, "Answer: C").answer == "C"
    assert extract("prefix_regex", vmme, "Answer: C").answer == "A"  # 'A' of 'Answer' in lmms-eval 0.3.0
    assert p.stand_in and "judge" in p.task("mvbench").offline
    assert p.wrapper_for("llava-video-7b").time_instruction == ("llava-video-7b",)


def test_stts_protocol_says_it_is_a_stand_in():
    p = get_protocol("stts-molmo2")
    assert "could not be read" in p.stand_in and p.wrapper_for("molmo2-4b").name == "molmo2"


def test_every_paper_tier_claim_names_a_protocol_of_its_paper():
    claims = claims_by_id()
    for c in claims.values():
        if c["tier"] == "paper":
            assert get_protocol(c["protocol"]).paper == c["paper"], c["id"]


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(protocol="lmms-eval-9.9"),
     r"claim 'holitom-perf-kept-ov7b-r10': field 'protocol': unknown evaluation protocol 'lmms-eval-9.9'; "
     r"allowed: holitom-lmms-eval-0.3.0, tango-lmms-eval-0.7.1, tango-vlmevalkit"),
    (lambda c: c["setting"].update(benchmarks=["mvbench", "lvbench"]),
     r"claim 'holitom-perf-kept-ov7b-r10': field 'protocol': protocol 'holitom-lmms-eval-0.3.0' does not define "
     r"benchmark 'lvbench'; it defines: videomme, mvbench, egoschema, longvideobench"),
    (lambda c: c["setting"].update(wrapper="llava_vid"),
     r"claim 'holitom-perf-kept-ov7b-r10': field 'protocol': wrapper 'llava_vid' of protocol "
     r"'holitom-lmms-eval-0.3.0' does not fit model 'llava-onevision-7b' \(family llava_onevision\); "
     r"allowed for it: llava_onevision"),
    (lambda c: c["setting"].update(model="molmo2-4b"),
     r"protocol 'holitom-lmms-eval-0.3.0' has no wrapper for model 'molmo2-4b'; its wrappers fit"),
])
def test_bad_protocols_are_refused_naming_claim_protocol_and_what_is_allowed(change, message):
    claim = copy.deepcopy(claims_by_id()["holitom-perf-kept-ov7b-r10"])
    change(claim)
    with pytest.raises(ClaimsError, match=message):
        check_protocol(claim)


def test_a_claims_file_with_a_bad_protocol_fails_to_load(tmp_path):
    import shutil

    from replicate.claims import CLAIMS_FILE, load_claims

    text = CLAIMS_FILE.read_text().replace("protocol: stts-molmo2", "protocol: stts-lmms", 1)
    (tmp_path / "claims.yaml").write_text(text)
    shutil.copytree(CLAIMS_FILE.parent / "reported", tmp_path / "reported")
    with pytest.raises(ClaimsError, match=r"claim 'stts-accuracy-drop-13tasks': field 'protocol': unknown "
                                          r"evaluation protocol 'stts-lmms'"):
        load_claims(tmp_path / "claims.yaml")


def test_a_paper_tier_claim_without_protocol_is_a_schema_error():
    from replicate.claims import validate_claim

    claim = copy.deepcopy(claims_by_id()["holitom-perf-kept-ov7b-r10"])
    del claim["protocol"]
    with pytest.raises(ClaimsError, match="'protocol' is a required property"):
        validate_claim(claim)
