"""Exact lmms-eval prompt strings per benchmark, answer-letter parsing, and scoring."""
from __future__ import annotations

import numpy as np
import pytest

from replicate.benchmarks import ANSWER_DIRECTLY, format_prompt, parse_letter, score

ANSWER = "Answer with the option's letter from the given choices directly."


def test_shared_instruction_is_lmms_evals():
    assert ANSWER_DIRECTLY == ANSWER


# The expected strings are written out by hand from lmms-eval's doc_to_text functions (anchors §A1).
def test_prompt_videomme(fixture_root, load_quiet):
    s = load_quiet("videomme", fixture_root("videomme"))[1]
    assert format_prompt(s) == (
        "Select the best answer to the following multiple-choice question based on the video and the "
        "subtitles. Respond with only the letter (A, B, C, or D) of the correct option.\n"
        "What colour fills the video 1?\n"
        "A. green\nB. blue\nC. yellow\nD. white\n"
        "\n" + ANSWER
    )


def test_prompt_mvbench(fixture_root, load_quiet):
    s = load_quiet("mvbench", fixture_root("mvbench"))[2]  # object_existence/0: 3 candidates
    # every release from 0.3.0 on (HoliTom's included) ends "Only give the best option.\n"; the
    # instruction up to 0.2.3.post1 was ANSWER_DIRECTLY
    assert format_prompt(s) == (
        "Question:Which colour is shown in clip 1?\nOption:\n(A) green\n(B) blue\n(C) yellow\nOnly give the best option.\n"
    )
    assert format_prompt(s, "holitom-lmms-eval-0.3.0") == format_prompt(s)


def test_prompt_egoschema(fixture_root, load_quiet):
    s = load_quiet("egoschema", fixture_root("egoschema"))[0]
    assert format_prompt(s) == (
        "What colour did c see in clip 0?\nA. red\nB. green\nC. blue\nD. yellow\nE. white\n" + ANSWER
    )


def test_prompt_longvideobench(fixture_root, load_quiet):
    s = load_quiet("longvideobench", fixture_root("longvideobench"))[1]  # 5 candidates
    assert format_prompt(s) == (
        "Which colour appears in video 1?\nA. green\nB. blue\nC. yellow\nD. white\nE. red\n" + ANSWER + "\n"
    )


def test_prompt_mlvu(fixture_root, load_quiet):
    s = load_quiet("mlvu", fixture_root("mlvu"))[2]  # count/0
    assert format_prompt(s) == (
        "Question: What is the colour of clip 1?\nOptions:\n(A) green\n(B) blue\n(C) yellow\n(D) white"
        "\nOnly give the best option.\nBest option: ("
    )


def test_prompt_lvbench(fixture_root, load_quiet):
    s = load_quiet("lvbench", fixture_root("lvbench"))[1]
    # lvbench.yaml's default post_prompt, not ANSWER_DIRECTLY; the options come from the question
    assert format_prompt(s) == (
        "What colour fills the video yt000xyz?\n(A) blue\n(B) red\n(C) yellow\n(D) white"
        "\nAnswer the question with the option letter"
    )


@pytest.mark.parametrize(
    "text, n, expected",
    [
        ("B", 4, 1),
        ("b", 4, 1),
        ("(B)", 4, 1),
        ("B.", 4, 1),
        ("B)", 4, 1),
        (" C\n", 4, 2),
        ("D. a yellow car", 4, 3),
        ("(c) the dog", 4, 2),
        ("The answer is B", 4, 1),
        ("The answer is b.", 4, 1),
        ("the best answer is (D)", 4, 3),
        ("Answer: C", 4, 2),
        ("Best option: (A) a cat", 4, 0),
        ("A) a cat", 4, 0),  # completion of MLVU's "Best option: (" prompt
        ("I think the correct option is C because it is red.", 4, 2),
        ("A man is walking, so B.", 4, 1),  # the article "A" is not an answer
        ("E", 5, 4),
        ("E", 4, None),  # beyond the options
        ("", 4, None),
        (None, 4, None),
        ("the man walks away", 4, None),
        ("I don't know", 4, None),
    ],
)
def test_parse_letter(text, n, expected):
    assert parse_letter(text, n) == expected


def test_parse_letter_rejects_bad_option_count():
    with pytest.raises(ValueError, match="n_options"):
        parse_letter("A", 0)


def test_score_hand_predictions_with_categories(fixture_root, load_quiet):
    samples = load_quiet("videomme", fixture_root("videomme"))  # answers 0, 1, 2; short/medium/long
    r = score(samples, ["(A)", "The answer is C", None])
    assert r["n"] == 3 and r["n_correct"] == 1 and r["n_unparsed"] == 1 and r["n_skipped"] == 0
    assert r["accuracy"] == pytest.approx(100 / 3)
    assert r["headline_accuracy"] == r["accuracy"]
    assert r["per_category"]["duration"] == {
        "long": {"accuracy": 0.0, "n": 1},
        "medium": {"accuracy": 0.0, "n": 1},
        "short": {"accuracy": 100.0, "n": 1},
    }
    assert r["per_category"]["domain"]["Knowledge"] == {"accuracy": 50.0, "n": 2}


def test_score_macro_headline_for_mlvu(fixture_root, load_quiet):
    samples = load_quiet("mlvu", fixture_root("mlvu"))  # plotQA/0 (ans 0), plotQA/1 (ans 2), count/0 (ans 1)
    r = score(samples, {"plotQA/0": 0, "plotQA/1": 1, "count/0": "B"})
    assert r["per_category"]["task"] == {"count": {"accuracy": 100.0, "n": 1}, "plotQA": {"accuracy": 50.0, "n": 2}}
    assert r["accuracy"] == pytest.approx(200 / 3)
    assert r["headline_accuracy"] == pytest.approx(75.0)  # mean over tasks, MLVU's M-Avg


def test_score_input_checks(fixture_root, load_quiet):
    samples = load_quiet("videomme", fixture_root("videomme"))
    with pytest.raises(ValueError, match="2 predictions for 3 samples"):
        score(samples, [0, 1])
    with pytest.raises(KeyError, match="no prediction for 1 sample"):
        score(samples, {"001-1": 0, "002-1": 1})
    # an out-of-range index is a wrong, unparsed answer, not a crash; numpy ints are indices too
    r = score(samples, [7, np.int64(1), 2])
    assert (r["n_unparsed"], r["n_correct"]) == (1, 2)
    with pytest.raises(TypeError, match="is a bool"):
        score(samples, [True, 1, 2])
