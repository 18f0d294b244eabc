"""LVBench (Wang et al. 2024, "LVBench: An Extreme Long Video Understanding Benchmark"): 1,549
four-option questions on 103 videos of about an hour each, lmms-eval's ``lvbench`` task.

Layouts (facts read in THUDM/LVBench (now zai-org/LVBench): ``README.md``, ``data/README.md``,
``scripts/save_video_txt.py``, ``scripts/construct_random_answers.py``,
``lvbench/metrics/compute_accuracy.py``, ``scripts/test_acc.py``; and in EvolvingLMMs-Lab/lmms-eval:
``lmms_eval/tasks/lvbench/lvbench.yaml`` and ``utils.py``):

* the official release: ``video_info.meta.jsonl`` (at the root or under ``data/``), one line per
  video: {key (the YouTube id), type (video category), video_info {duration_minutes, fps,
  resolution}, qa: [{uid, question (the options written into it as "(A) ..." lines), answer (a
  letter), question_type (a list of the six capabilities, e.g. "key information retrieval"),
  time_reference}]}; the video is ``<key>.mp4`` (the official download script fetches it by that
  id), looked for under ``videos/``, ``all_videos/`` (the HF zip) or the root, ``.mkv``/``.webm``
  accepted too;
* lmms-eval's copy (lmms-lab/LVBench, ``data/train-00000-of-00001.parquet``, split ``train``):
  rows {video_path (relative to the dataset's cache dir, i.e. this root), question, answer (a
  letter), options (optional: when present lmms-eval appends them as "(A) ..." lines)}; the other
  fields are kept in ``meta`` when present.

The sample id is the question's ``uid`` (``compute_accuracy`` keys answers by ``str(uid)``), or
``<video>-<i>`` for a row without one. The headline is the overall accuracy ("Overall" in
``test_acc.py``). ``question_type`` is multi-label: the official per-capability accuracy counts a
question in each of its capabilities; here ``meta["question_type"]`` is the labels joined by ", "
(one category per label combination).
"""
from __future__ import annotations

from pathlib import Path

from .base import (
    MCQSample,
    find_annotations,
    first_existing,
    letter_index,
    read_records,
    split_embedded_options,
)
from .protocol_rules import prompt_for
from .validation import check_record

ANNOTATION_PATTERNS = (
    "video_info.meta.jsonl",
    "data/video_info.meta.jsonl",
    "data/train-*.parquet",
    "train-*.parquet",
    "data/train*.jsonl",
    "data/train*.json",
    "lvbench.jsonl",
    "lvbench.json",
)
VIDEO_DIRS = ("videos", "all_videos", ".")
VIDEO_EXTS = (".mp4", ".mkv", ".webm")
#: what each layout's records must hold (replicate.benchmarks.validation.check_record)
OFFICIAL_FIELDS = {"key": "relpath", "qa": "records"}
QA_FIELDS = {"uid": "id", "question": "text", "answer": "letter"}
LMMS_EVAL_FIELDS = {"video_path": "relpath", "question": "text", "answer": "letter", "options": "options"}


def _official(root: Path, path: Path, i: int, row: dict) -> list[MCQSample]:
    """The questions of one line of video_info.meta.jsonl (one video)."""
    where = f"lvbench {path.name} line {i + 1}"
    check_record(row, OFFICIAL_FIELDS, where, id_field="key")
    key = str(row["key"])
    video = first_existing([root / d / f"{key}{e}" for d in VIDEO_DIRS for e in VIDEO_EXTS])
    samples = []
    for j, qa in enumerate(row["qa"]):
        at = f"{where} qa {j}"
        check_record(qa, QA_FIELDS, at, id_field="uid")
        stem, options = split_embedded_options(str(qa["question"]), at)
        meta = {"video_key": key, "prompt_question": str(qa["question"]),
                "question_type": ", ".join(str(t) for t in qa.get("question_type") or [])}
        if "type" in row:
            meta["video_type"] = str(row["type"])
        if "time_reference" in qa:
            meta["time_reference"] = qa["time_reference"]
        samples.append(MCQSample(benchmark="lvbench", sample_id=str(qa["uid"]), video_path=video, question=stem,
                                 options=options, answer_index=letter_index(qa["answer"], len(options), at), meta=meta,
                                 source=at))
    return samples


def _lmms_eval_row(root: Path, path: Path, i: int, row: dict) -> MCQSample:
    """One row of lmms-eval's copy: the question carries its options unless an ``options`` field does."""
    where = f"lvbench {path.name} record {i}"
    check_record(row, LMMS_EVAL_FIELDS, where, id_field="uid", optional=["options"])
    question = str(row["question"])
    meta: dict = {"prompt_question": question}
    if row.get("options"):  # 0.7.3 appends them as "(A) ..." lines, 0.7.1 does not (protocol_rules)
        stem, options = question, [str(o) for o in row["options"]]
        meta["options_raw"] = options
    else:
        stem, options = split_embedded_options(question, where)
    rel = str(row["video_path"])
    types = row.get("question_type")
    if types is not None:
        meta["question_type"] = ", ".join(str(t) for t in types) if isinstance(types, list) else str(types)
    meta.update({k: row[k] for k in ("time_reference", "key", "type") if k in row})
    return MCQSample(benchmark="lvbench", sample_id=str(row.get("uid", f"{rel}-{i}")),
                     video_path=first_existing([root / rel, root / "videos" / rel]), question=stem, options=options,
                     answer_index=letter_index(row["answer"], len(options), where), meta=meta, source=where)


class LVBench:
    name = "lvbench"
    annotation_names = ANNOTATION_PATTERNS
    subsets = ()
    category_keys = ("question_type", "video_type")
    headline = "micro"
    option_counts = (4, 4)

    def read(self, root: Path, subset):
        samples = []
        for path in find_annotations(root, "lvbench", ANNOTATION_PATTERNS):
            for i, row in enumerate(read_records(path)):
                if "qa" in row:
                    samples.extend(_official(root, path, i, row))
                else:
                    samples.append(_lmms_eval_row(root, path, i, row))
        return samples, []

    def format_prompt(self, sample: MCQSample) -> str:
        return prompt_for(sample)
