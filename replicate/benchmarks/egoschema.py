"""EgoSchema: 5,031 three-minute egocentric clips, 5 options; answers are public for 500 only.

Two local layouts are read (facts from the EgoSchema repository and lmms-lab/egoschema):

* the original release: ``questions.json`` (list of {q_uid, question, "option 0" .. "option 4"})
  plus ``subset_answers.json`` ({q_uid: answer index}) for the 500-question subset;
* the lmms-lab HF copy: ``Subset/test-*.parquet`` (or the full set under ``MC/``/``GENERATION/``)
  with {question_idx, question, video_idx, option: ["A. ...", ...], answer: "0".."4"}, the answer
  empty where it is not public.

Videos are ``videos/<q_uid>.mp4`` in both. Questions without a public answer cannot be scored;
they are left out and listed in ``skipped`` with reason "no public answer".
"""
from __future__ import annotations

import json
from pathlib import Path

from .base import (
    MCQSample,
    config_key,
    find_annotations,
    first_existing,
    letter_index,
    read_records,
    strip_letter_prefix,
)
from .protocol_rules import prompt_for
from .validation import check_record

ANNOTATION_PATTERNS = (
    "questions.json",
    "Subset/test*.parquet",
    "Subset/test*.jsonl",
    "Subset/test*.json",
    "subset*.jsonl",
    "MC/test*.parquet",
    "MC/test*.jsonl",
    "MC/test*.json",
    "GENERATION/test*.parquet",
    "GENERATION/test*.json*",
)
ANSWER_FILES = ("subset_answers.json", "answers.json")
#: what a record must hold in each layout (replicate.benchmarks.validation.check_record); the id
#: names the video file, so it is checked as a path inside the root
ORIGINAL_FIELDS = {"q_uid": "relpath", "question": "text"}
HF_FIELDS = {"video_idx": "relpath", "question": "text", "option": "options"}


def _video(root: Path, uid: str) -> Path:
    return first_existing([root / "videos" / f"{uid}{e}" for e in (".mp4", ".MP4")] + [root / f"{uid}.mp4"])


class EgoSchema:
    name = "egoschema"
    annotation_names = ANNOTATION_PATTERNS
    subsets = ()
    category_keys = ()
    headline = "micro"
    option_counts = (5, 5)

    def read(self, root: Path, subset):
        files = find_annotations(root, "egoschema", ANNOTATION_PATTERNS)
        samples, dropped = [], []
        if files[0].name == "questions.json":
            answers: dict[str, int] = {}
            for name in ANSWER_FILES:
                if (root / name).is_file():
                    with open(root / name, encoding="utf-8") as f:
                        answers = {str(k): v for k, v in json.load(f).items()}
                    break
            else:
                raise FileNotFoundError(
                    f"egoschema: {str(root / 'questions.json')!r} has no answer file beside it "
                    f"(config key `{config_key('egoschema')}`); expected one of: {', '.join(ANSWER_FILES)}"
                )
            for i, row in enumerate(read_records(files[0])):
                where = f"egoschema questions.json record {i}"
                check_record(row, {**ORIGINAL_FIELDS, **{f"option {j}": "text" for j in range(5)}}, where,
                             id_field="q_uid", optional=[f"option {j}" for j in range(5)])
                uid = str(row["q_uid"])
                options = [str(row[k]) for k in (f"option {j}" for j in range(5)) if row.get(k) is not None]
                if uid not in answers:
                    dropped.append((uid, "no public answer"))
                    continue
                samples.append(self._sample(root, uid, row["question"], options, answers[uid], where))
            return samples, dropped
        for path in files:
            for i, row in enumerate(read_records(path)):
                where = f"egoschema {path.name} record {i}"
                check_record(row, HF_FIELDS, where, id_field="question_idx")
                uid = str(row["video_idx"])
                options = [strip_letter_prefix(o, j) for j, o in enumerate(row["option"])]
                ans = row.get("answer")
                if ans is None or str(ans).strip() == "":
                    dropped.append((uid, "no public answer"))
                    continue
                samples.append(self._sample(root, uid, row["question"], options, ans, where,
                                            raw=[str(o) for o in row["option"]]))
        return samples, dropped

    @staticmethod
    def _sample(root: Path, uid: str, question, options, answer, where: str, raw=None) -> MCQSample:
        return MCQSample(
            benchmark="egoschema",
            sample_id=uid,
            video_path=_video(root, uid),
            question=str(question),
            options=options,
            answer_index=letter_index(answer, len(options), where),
            meta={"options_raw": raw} if raw else {},  # the HF copy's "A. text" strings, printed as stored
            source=where,
        )

    def format_prompt(self, sample: MCQSample) -> str:
        return prompt_for(sample)
