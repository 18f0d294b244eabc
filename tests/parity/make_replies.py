"""Write tests/parity/data/replies.json: >= 200 realistic model replies per benchmark.

    python tests/parity/make_replies.py        (deterministic; the committed file is its output)

The replies are the shapes video LLMs actually produce under these prompts (bare letters in either
case, bracketed letters, a letter with its option text, lead-ins such as "The answer is", sentences
that open with the article "A", reasoning that names several letters, the option text alone, MLVU
completions of "Best option: (", JSON and markdown, other languages, empty and whitespace-only
replies, letters beyond the options, long answers without any letter). Each template is filled with
the letters and option texts of every sample document of the benchmark (tests/parity/data/docs.json).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
LETTERS = "ABCDE"

TEMPLATES = (
    "{L}", "{l}", "({L})", "({l})", "{L}.", "{L})", "{l})", "{L}: {T}", "{L}. {T}", "({L}) {T}", " {L}\n",
    "{L}. {T}.", "{l}. {t}", "Answer: {L}", "answer: {l}", "Answer: ({L})", "Answer: {L}. {T}",
    "The answer is {L}.", "The answer is ({L}) {T}", "The correct answer is {L}", "the correct answer is {l}",
    "The best answer is: {L}", "The best answer is {L}. {T}", "Best option: ({L}) {T}", "Best option:({L})",
    "Best option: {L}", "The best option is {L}.", "Option {L}", "Option: {L}", "I choose {L}.",
    "My answer is {L}", "{L}) {T}", "{l}) {t}", "{T}", "{t}", "{T2}", "It is {L}.", "I think it's {L}.",
    "The correct option is ({L}).", "Not {L2}, it's {L}.", "{L2} or {L}? I would say {L}.",
    "Between {L2} and {L}, the answer is {L}.", "{L}\nBecause {t}.", "{L}\n\n{T}",
    "Based on the video, the answer is {L}.", "According to the video, {t}. So the answer is {L}.",
    "A person is shown; the answer is {L}.", "A man in the video does this, so {L}.",
    "A woman appears and the correct choice is {L}.", "**{L}**", "**{L}. {T}**", '{{"answer": "{L}"}}',
    "<answer>{L}</answer>", "[{L}]", "答案是{L}", "选{L}", "The answer is {L2}. Wait, no: {L}.",
    "{L}, {T}", "{L} - {T}", "{L}: {T}. {L2} is wrong.", "Correct answer: {L}", "Option ({L})",
)
FIXED = (
    "", " ", "\n", "I don't know.", "None of the above.", "I cannot determine this from the video.",
    "The video does not show enough information to answer this question with certainty at all.",
    "In this video we see many people walking around a market and talking to each other happily.",
    "E", "F", "(E)", "Z", "1", "2", "3", "Answer: 2", "option 3", "The first one.", "Both B and C are possible.",
    "A and B", "A.", "A man is cooking.", "A", "a", "I", "I think it is the second option.",
    "The answer: A", "The best option isThe correct option is B", "Best answer:Best option: C",
    "D. A book", "B. A dog walks", "Answer: D", "(a)", "answer: d", "Not A, it's C", "ABCD",
)


def _fill(template: str, letter: str, other: str, text: str, text2: str) -> str:
    return template.format(L=letter, l=letter.lower(), L2=other, T=text, t=text.lower(), T2=text2)


def _options(name: str, doc: dict) -> list[str]:
    if name == "videomme":
        return [re.sub(r"^[A-D]\.\s*", "", o).strip() for o in doc["options"]]
    if name == "mvbench":
        return list(doc["candidates"])
    if name == "egoschema":
        return [re.sub(r"^[A-E]\.\s*", "", o) for o in doc["option"]]
    if name == "longvideobench":
        return [doc[f"option{i}"] for i in range(5) if doc[f"option{i}"] != "N/A"]
    if name in ("mlvu", "lvbench"):
        if doc.get("options"):
            return list(doc["options"])
        return [m.group(1) for m in re.finditer(r"^\([A-E]\) (.*)$", doc["question"], re.M)]
    raise ValueError(name)


def replies_for(name: str, docs: list[dict]) -> list[str]:
    """Every template filled with each document's letters (the right one and a wrong one) and texts."""
    out: list[str] = []
    for d, doc in enumerate(docs):
        opts = _options(name, doc)
        for k, template in enumerate(TEMPLATES):
            i = (d + k) % len(opts)
            j = (i + 1) % len(opts)
            out.append(_fill(template, LETTERS[i], LETTERS[j], opts[i], opts[j]))
    out += list(FIXED)
    seen, unique = set(), []
    for r in out:
        if r not in seen:
            seen.add(r)
            unique.append(r)
    return unique


def main() -> None:
    docs = json.loads((HERE / "data" / "docs.json").read_text())
    corpus = {name: replies_for(name, rows) for name, rows in docs.items() if not name.startswith("_")}
    corpus = {"_about": "written by tests/parity/make_replies.py (see its docstring); do not edit by hand", **corpus}
    (HERE / "data" / "replies.json").write_text(json.dumps(corpus, indent=1, ensure_ascii=False) + "\n")
    print({k: len(v) for k, v in corpus.items() if not k.startswith("_")})


if __name__ == "__main__":
    main()
