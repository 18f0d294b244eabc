"""MLVU dev set, its seven multiple-choice tasks (the two generation tasks are not MCQ).

Layouts (facts from the MLVU repository / HF dataset and lmms-eval's ``mlvu_dev`` task):

* the official release: ``json/<k>_<task>.json`` per task (1_plotQA, 2_needle, 3_ego, 4_count,
  5_order, 6_anomaly_reco, 7_topic_reasoning), each a list of {video, duration, question,
  candidates, answer (the right candidate's text), question_type}; videos in
  ``video/<k>_<task>/<video>``;
* lmms-eval's copy (sy1998/MLVU_dev): ``test-*.parquet`` / json rows {video_name, question (with the
  options already written into it as "(A) ..." lines), answer (a letter), task_type}; the video is
  ``<root>/<video_name>``. For these rows the original question text is kept in
  ``meta["prompt_question"]`` so the prompt is lmms-eval's, byte for byte.

The headline number (M-Avg in the MLVU paper) is the mean of the per-task accuracies.
"""
from __future__ import annotations

from pathlib import Path

from .base import (
    LETTERS,
    candidates_and_answer,
    MCQSample,
    files_per_task,
    find_annotations,
    first_existing,
    letter_index,
    read_records,
    split_embedded_options,
)
from .protocol_rules import prompt_for
from .validation import check_record

TASK_FILES = {
    "plotQA": "1_plotQA",
    "needle": "2_needle",
    "ego": "3_ego",
    "count": "4_count",
    "order": "5_order",
    "anomaly_reco": "6_anomaly_reco",
    "topic_reasoning": "7_topic_reasoning",
}
TASKS = tuple(TASK_FILES)
LMMS_EVAL_PATTERNS = ("test-*.parquet", "test*.jsonl", "test*.json", "mlvu_dev.json", "mlvu_dev.jsonl")
#: what a record of lmms-eval's copy must hold (replicate.benchmarks.validation.check_record)
LMMS_EVAL_FIELDS = {"video_name": "relpath", "question": "text", "answer": "letter"}


class MLVU:
    name = "mlvu"
    annotation_names = tuple(f"json/{f}.json" for f in TASK_FILES.values()) + LMMS_EVAL_PATTERNS
    subsets = TASKS
    category_keys = ("task",)
    headline = "macro"
    option_counts = (2, 8)  # the MLVU dev set's option count is not stated in what was read: a loose band

    def read(self, root: Path, subset):
        wanted = [t for t in TASKS if subset is None or t in subset]
        if any((root / "json").glob("*_*.json*")):
            files = files_per_task(
                root, "mlvu", wanted, lambda t: (f"json/{TASK_FILES[t]}.json", f"json/{TASK_FILES[t]}.jsonl"), subset is None
            )
            return self._read_official(root, files), []
        samples = []
        rows = [(p, r) for p in find_annotations(root, "mlvu", LMMS_EVAL_PATTERNS) for r in read_records(p)]
        for i, (path, row) in enumerate(rows):  # i runs across shards so ids stay unique
            where = f"mlvu {path.name} record {i}"
            check_record(row, LMMS_EVAL_FIELDS, where)
            task = str(row.get("task_type", row.get("question_type", "")))
            if subset is not None and task not in subset:
                continue
            stem, options = split_embedded_options(str(row["question"]), where)
            samples.append(
                MCQSample(
                    benchmark="mlvu",
                    sample_id=f"{task}/{i}",
                    video_path=first_existing([root / str(row["video_name"]), root / "video" / str(row["video_name"])]),
                    question=stem,
                    options=options,
                    answer_index=letter_index(row["answer"], len(options), where),
                    meta={"task": task, "prompt_question": str(row["question"])},
                    source=where,
                )
            )
        return samples, []

    @staticmethod
    def _read_official(root: Path, files: dict[str, list[Path]]) -> list[MCQSample]:
        samples = []
        for task, paths in files.items():
            for path in paths:
                for i, row in enumerate(read_records(path)):
                    where = f"mlvu {path.name} record {i}"
                    options, answer_index = candidates_and_answer(row, where)
                    video = str(row["video"])
                    # lmms-eval's copy writes the options into the question; this layout is assumed
                    meta = {"task": task, "prompt_question": f"Question: {row['question']}\nOptions:\n" + "\n".join(
                        f"({LETTERS[j]}) {o}" for j, o in enumerate(options))}
                    if "duration" in row:
                        meta["duration"] = row["duration"]
                    samples.append(
                        MCQSample(
                            benchmark="mlvu",
                            sample_id=f"{task}/{i}",
                            video_path=first_existing([root / "video" / TASK_FILES[task] / video, root / "video" / video]),
                            question=str(row["question"]),
                            options=options,
                            answer_index=answer_index,
                            meta=meta,
                            source=where,
                        )
                    )
        return samples

    def format_prompt(self, sample: MCQSample) -> str:
        return prompt_for(sample)
