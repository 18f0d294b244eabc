"""LongVideoBench validation set (longvideobench/LongVideoBench), lmms-eval's ``longvideobench_val_v``.

Layout (facts from the dataset card and lmms-eval's task): ``lvb_val.json``, a list of {id,
video_id, video_path ("<id>.mp4"), question, candidates (4 or 5 texts), correct_choice (index),
duration_group (15 / 60 / 600 / 3600 seconds), question_category, duration, ...}; videos under
``videos/``. The HF parquet export spells the options option0..option4 with "N/A" for absent
ones; both spellings are read.
"""
from __future__ import annotations

from pathlib import Path

from .base import (
    MCQSample,
    find_annotations,
    first_existing,
    letter_index,
    read_records,
)
from .protocol_rules import prompt_for
from .validation import check_record

ANNOTATION_PATTERNS = (
    "lvb_val.json",
    "lvb_val.jsonl",
    "validation-*.parquet",
    "validation*.jsonl",
    "validation*.json",
)
DURATION_GROUPS = ("15", "60", "600", "3600")
#: what a record must hold (replicate.benchmarks.validation.check_record); the options are
#: ``candidates`` or option0..option4
RECORD_FIELDS = {"video_path": "relpath", "question": "text", "correct_choice": "index", "candidates": "options"}


def _options(row: dict, where: str) -> list[str]:
    if "candidates" in row:
        return [str(c) for c in row["candidates"]]
    opts = [row.get(f"option{i}") for i in range(5)]
    opts = [str(o) for o in opts if o is not None and o != "N/A"]
    if not opts:
        raise KeyError(f"{where}: no candidates / option0..option4 fields; it has {sorted(row)}")
    return opts


class LongVideoBench:
    name = "longvideobench"
    annotation_names = ANNOTATION_PATTERNS
    subsets = DURATION_GROUPS
    category_keys = ("duration_group", "question_category")
    headline = "micro"
    option_counts = (4, 5)

    def read(self, root: Path, subset):
        samples = []
        for path in find_annotations(root, "longvideobench", ANNOTATION_PATTERNS):
            for i, row in enumerate(read_records(path)):
                where = f"longvideobench {path.name} record {i}"
                check_record(row, RECORD_FIELDS, where, id_field="id", optional=["candidates"])
                group = str(row.get("duration_group", ""))
                if subset is not None and group not in subset:
                    continue
                options = _options(row, where)
                rel = str(row["video_path"])
                meta = {k: row[k] for k in ("question_category", "duration", "video_id") if k in row}
                if group:
                    meta["duration_group"] = group
                samples.append(
                    MCQSample(
                        benchmark="longvideobench",
                        sample_id=str(row.get("id", f"{rel}-{i}")),
                        video_path=first_existing([root / "videos" / rel, root / rel]),
                        question=str(row["question"]),
                        options=options,
                        answer_index=letter_index(int(row["correct_choice"]), len(options), where),
                        meta=meta,
                        source=where,
                    )
                )
        return samples, []

    def format_prompt(self, sample: MCQSample) -> str:
        return prompt_for(sample)
