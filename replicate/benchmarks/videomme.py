"""Video-MME (lmms-lab/Video-MME): 2,700 questions on 900 videos, 4 options, no subtitles.

Layout of the HF copy (facts from the dataset card and lmms-eval's videomme task):
``videomme/test-00000-of-00001.parquet`` with fields video_id, duration (short/medium/long),
domain, sub_category, url, videoID, question_id, task_type, question, options (["A. ...", ...]),
answer ("C"); videos unpacked from the zip chunks into ``data/<videoID>.mp4`` (some are .MP4/.mkv,
which lmms-eval also tries). A json/jsonl export of the same records is accepted as well.
"""
from __future__ import annotations

from pathlib import Path

from .base import (
    MCQSample,
    find_annotations,
    first_existing,
    letter_index,
    read_records,
    strip_letter_prefix,
)
from .protocol_rules import prompt_for
from .validation import check_record

ANNOTATION_PATTERNS = (
    "videomme/test-*.parquet",
    "videomme/test*.jsonl",
    "videomme/test*.json",
    "test-*.parquet",
    "test*.jsonl",
    "test*.json",
    "videomme.jsonl",
    "videomme.json",
)
DURATIONS = ("short", "medium", "long")
VIDEO_DIRS = ("data", "videos")
VIDEO_EXTS = (".mp4", ".MP4", ".mkv")
#: what a record must hold (replicate.benchmarks.validation.check_record)
RECORD_FIELDS = {"videoID": "relpath", "question": "text", "options": "options", "answer": "letter"}


class VideoMME:
    name = "videomme"
    annotation_names = ANNOTATION_PATTERNS
    subsets = DURATIONS
    category_keys = ("duration", "domain", "task_type")
    headline = "micro"
    option_counts = (4, 4)

    def read(self, root: Path, subset):
        samples = []
        for path in find_annotations(root, "videomme", ANNOTATION_PATTERNS):
            for i, row in enumerate(read_records(path)):
                where = f"videomme {path.name} record {i}"
                check_record(row, RECORD_FIELDS, where, id_field="question_id")
                if subset is not None and row.get("duration") not in subset:
                    continue
                options = [strip_letter_prefix(o, j) for j, o in enumerate(row["options"])]
                vid = str(row["videoID"])
                video = first_existing([root / d / f"{vid}{e}" for d in VIDEO_DIRS for e in VIDEO_EXTS])
                samples.append(
                    MCQSample(
                        benchmark="videomme",
                        sample_id=str(row.get("question_id", f"{vid}-{i}")),
                        video_path=video,
                        question=str(row["question"]),
                        options=options,
                        answer_index=letter_index(row["answer"], len(options), where),
                        meta={
                            **{k: row[k] for k in ("duration", "domain", "sub_category", "task_type", "videoID",
                                                   "video_id") if k in row},
                            "options_raw": [str(o) for o in row["options"]],  # lmms-eval prints them as stored
                        },
                        source=where,
                    )
                )
        return samples, []

    def format_prompt(self, sample: MCQSample) -> str:
        return prompt_for(sample)
