"""Option lettering and this project's own lenient answer-letter parser.

The benchmarks' prompt texts and the answer extraction each evaluation release uses live in
``protocol_rules.py`` (rules) and ``protocols.py`` (which release uses which rule, with sources);
``format_prompt(sample)`` gives the newest lmms-eval's text. ``parse_letter`` below is not any
release's parser: it is the project's forgiving reading of a reply (lower case, "(b)", "The answer
is B", ...), used where no protocol is named (the harness's own runs); the paper tier scores every
reply with its claim's protocol instead.
"""
from __future__ import annotations

import re

from .base import LETTERS
from .protocol_rules import ANSWER_DIRECTLY

__all__ = ["ANSWER_DIRECTLY", "lettered", "parse_letter"]


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
