"""Prompt strings (lmms-eval's, per benchmark) and answer-letter parsing.

The strings below are the lmms-eval *default* model prompts for each task (read in
EvolvingLMMs-Lab/lmms-eval, ``lmms_eval/tasks/<task>/utils.py`` ``*_doc_to_text`` and the task
YAMLs' ``lmms_eval_specific_kwargs.default``; see anchors.md §A1). They are recorded verbatim
because the prompt is one of the undocumented knobs behind "cannot reproduce" reports (§F.1).
Each benchmark module builds its prompt from these; ``registry.format_prompt`` dispatches on the sample.
"""
from __future__ import annotations

import re

from .base import LETTERS

# Shared instruction, used verbatim by lmms-eval's videomme, mvbench, egoschema and
# longvideobench default prompts.
ANSWER_DIRECTLY = "Answer with the option's letter from the given choices directly."

# VideoMME (lmms_eval/tasks/videomme/utils.py videomme_doc_to_text; videomme.yaml default
# post_prompt "\n" + ANSWER_DIRECTLY). The lead sentence mentions subtitles even in the
# no-subtitle task: that is lmms-eval's text, kept as is.
# Layout: LEAD \n question \n "A. opt" lines \n POST
VIDEOMME_LEAD = (
    "Select the best answer to the following multiple-choice question based on the video and the "
    "subtitles. Respond with only the letter (A, B, C, or D) of the correct option."
)
VIDEOMME_POST = "\n" + ANSWER_DIRECTLY

# MVBench (lmms_eval/tasks/mvbench/utils.py mvbench_doc_to_text; every sub-task YAML sets
# post_prompt = ANSWER_DIRECTLY). Layout: "Question:" question "\nOption:\n" "(A) opt\n"... POST
MVBENCH_QUESTION = "Question:"
MVBENCH_OPTION_HEADER = "\nOption:\n"
MVBENCH_POST = ANSWER_DIRECTLY

# EgoSchema (lmms_eval/tasks/egoschema/utils.py egoschema_doc_to_text: when the doc has options it
# appends "\n" + option for each and forces this post prompt). Layout: question ("\nA. opt")* POST
EGOSCHEMA_POST = "\n" + ANSWER_DIRECTLY

# LongVideoBench val_v (lmms_eval/tasks/longvideobench/utils.py longvideobench_doc_to_text;
# longvideobench_val_v.yaml default post_prompt, note the trailing newline).
# Layout: question \n "A. opt" lines \n POST
LONGVIDEOBENCH_POST = ANSWER_DIRECTLY + "\n"

# MLVU dev (lmms_eval/tasks/mlvu/utils.py mlvu_doc_to_text). lmms-eval does NOT use
# ANSWER_DIRECTLY here: the question field of its MLVU copy already lists the options, and the
# prompt ends with an open parenthesis the model completes. When we build the question ourselves
# (official MLVU json: question + candidates) we use MLVU's own evaluation layout
# "Question: q\nOptions:\n(A) opt\n(B) opt" (MLVU repo's choice_bench evaluation).
# Layout: "\n" question MLVU_ONLY_BEST "\n" MLVU_POST
MLVU_ONLY_BEST = "\nOnly give the best option.\n"
MLVU_POST = "Best option: ("

# LVBench (lmms_eval/tasks/lvbench/utils.py lvbench_doc_to_text; lvbench.yaml default pre_prompt ""
# and post_prompt below, without the final period that utils.py's fallback has, and not
# ANSWER_DIRECTLY). The question already lists its options as "(A) opt" lines.
# Layout: question \n "(A) opt" lines POST
LVBENCH_POST = "\nAnswer the question with the option letter"


def lettered(options: list[str], style: str) -> list[str]:
    """Options with their letters: style 'dot' -> 'A. x', 'paren' -> '(A) x'."""
    if style == "dot":
        return [f"{LETTERS[i]}. {o}" for i, o in enumerate(options)]
    if style == "paren":
        return [f"({LETTERS[i]}) {o}" for i, o in enumerate(options)]
    raise ValueError(f"unknown option style {style!r}; allowed: dot, paren")


# --------------------------------------------------------------------------------------------------
# answer parsing

# Lead-ins models put before the letter; removed case-insensitively before looking for it. Longest
# first so "the best answer is" is removed whole. (The list follows lmms-eval's
# extract_characters_regex prefixes, plus a few common variants.)
_PREFIXES = sorted(
    [
        "the best answer is", "the correct answer is", "the answer is", "the answer",
        "the best option is", "the correct option is", "best answer:", "best option:",
        "best answer", "best option", "answer:", "answer", "option:", "option",
        "my answer is", "i choose", "i would choose", "i think it is",
    ],
    key=len,
    reverse=True,
)
_PREFIX_RE = re.compile("|".join(re.escape(p) for p in _PREFIXES), re.IGNORECASE)


def parse_letter(text: str | None, n_options: int) -> int | None:
    """Option index named by a model's answer text, or None when no valid letter is found.

    Accepted (letter within the first ``n_options``): "B", "b", "(B)", "B.", "B)", "B: text",
    "(b) text", "The answer is B", "Answer: (B)", "Best option: (B) text", and a bare capital
    letter inside a sentence ("I pick C because ..."). A sentence starting with the article "A"
    ("A man runs") is not read as option A. Letters beyond ``n_options`` are ignored (keep looking).
    """
    if not isinstance(n_options, int) or not 1 <= n_options <= len(LETTERS):
        raise ValueError(f"n_options must be an int in 1..{len(LETTERS)}, got {n_options!r}")
    if text is None:
        return None
    valid = LETTERS[:n_options]
    s = " ".join(str(text).split())  # collapse newlines/tabs
    s = _PREFIX_RE.sub(" ", s).strip()
    s = s.lstrip(" :*-\"'`").strip()

    def ok(ch: str) -> int | None:
        ch = ch.upper()
        return valid.index(ch) if ch in valid else None

    # 1) the whole answer is one letter, optionally bracketed / punctuated: "b", "(B)", "B."
    m = re.fullmatch(r"[\(\[]?([A-Za-z])[\)\]]?[\.\):,]?", s)
    if m and (idx := ok(m.group(1))) is not None:
        return idx
    # 2) leading letter with a delimiter, any case: "B. text", "(b) text", "C) text", "D: text"
    m = re.match(r"[\(\[]([A-Za-z])[\)\]]|([A-Za-z])[\.\):](?:\s|$)", s)
    if m and (idx := ok(m.group(1) or m.group(2))) is not None:
        return idx
    # 3) bracketed capital anywhere: "... is (C)"
    for m in re.finditer(r"[\(\[]([A-Z])[\)\]]", s):
        if (idx := ok(m.group(1))) is not None:
            return idx
    # 4) a standalone capital letter anywhere, skipping the article "A"/pronoun "I" when a
    #    lower-case word follows ("A man ...", "I think ...").
    for m in re.finditer(r"(?<![A-Za-z'])([A-Z])(?![A-Za-z'])", s):
        rest = s[m.end():]
        if m.group(1) in "AI" and re.match(r"\s+[a-z]", rest):
            continue
        if (idx := ok(m.group(1))) is not None:
            return idx
    return None
