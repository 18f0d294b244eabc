"""MVBench (OpenGVLab/MVBench): 20 temporal sub-tasks x 200 questions, 2-5 options.

Layout of the HF copy (facts from the dataset card, the MVBench evaluation notebook and
lmms-eval's mvbench task): ``json/<sub_task>.json``, each a list of {video, question, candidates,
answer (the text of the right candidate)}; five sub-tasks add the clip's ``start``/``end`` seconds.

Which frames: lmms-eval (0.3.0 to 0.7.3, ``DATA_LIST`` in ``lmms_eval/tasks/mvbench/utils.py``) reads
each video from one folder of the HF copy's ``video`` revision, for the bounded sub-tasks the
pre-cut clips (``star/Charades_segment``, ``sta/sta_video_segment``, ``tvqa/video_fps3_hq_segment``),
and never reads start/end. The official release ships the full-length sources there
(``star/Charades_v1_480``, ...). The loader prefers lmms-eval's folder; where only the full-length
video is on disk, the sample's ``meta["clip"] = [start, end]`` makes the paper tier decode only that
window (``methods.video_io.load_video(window=...)``, seek-based), so both layouts sample the clip,
never the whole video. Folders are looked for under ``video/``, the root and ``data0613/``.
episodic_reasoning's official copy is frame folders (3 fps), which the video decoder does not read.
"""
from __future__ import annotations

from pathlib import Path

from .base import MCQSample, candidates_and_answer, files_per_task, first_existing, read_records
from .protocol_rules import prompt_for

# sub-task -> (lmms-eval's folder, the official release's folder); one entry when they are the same
VIDEO_FOLDERS: dict[str, tuple[str, ...]] = {
    "action_sequence": ("star/Charades_segment", "star/Charades_v1_480"),
    "action_prediction": ("star/Charades_segment", "star/Charades_v1_480"),
    "action_antonym": ("ssv2_video_mp4", "ssv2_video"),
    "fine_grained_action": ("Moments_in_Time_Raw/videos",),
    "unexpected_action": ("FunQA_test/test",),
    "object_existence": ("clevrer/video_validation",),
    "object_interaction": ("star/Charades_segment", "star/Charades_v1_480"),
    "object_shuffle": ("perception/videos",),
    "moving_direction": ("clevrer/video_validation",),
    "action_localization": ("sta/sta_video_segment", "sta/sta_video"),
    "scene_transition": ("scene_qa/video",),
    "action_count": ("perception/videos",),
    "moving_count": ("clevrer/video_validation",),
    "moving_attribute": ("clevrer/video_validation",),
    "state_change": ("perception/videos",),
    "fine_grained_pose": ("nturgbd_convert", "nturgbd"),
    "character_order": ("perception/videos",),
    "egocentric_navigation": ("vlnqa",),
    "episodic_reasoning": ("tvqa/video_fps3_hq_segment", "tvqa/frames_fps3_hq"),
    "counterfactual_inference": ("clevrer/video_validation",),
}
SUBTASKS = tuple(VIDEO_FOLDERS)
FRAME_SUBTASKS = frozenset({"episodic_reasoning"})
#: sub-tasks whose records carry start/end (the MVBench notebook's bound=True ones)
BOUNDED = frozenset({"action_sequence", "action_prediction", "object_interaction", "action_localization",
                     "episodic_reasoning"})
_BASES = ("video", ".", "data0613")


def _video_candidates(root: Path, subtask: str, video: str) -> list[tuple[Path, bool]]:
    """(path, is the full-length source) in preference order: lmms-eval's folder first."""
    folders = VIDEO_FOLDERS[subtask]
    return [((root / base / folder / video), i > 0) for i, folder in enumerate(folders) for base in _BASES]


def _resolve_video(root: Path, subtask: str, row: dict) -> tuple[Path, dict]:
    """The video to read and the meta that says which frames: a window for a full-length source."""
    cands = _video_candidates(root, subtask, str(row["video"]))
    path = first_existing([p for p, _ in cands])
    full_length = dict(cands)[path]
    meta: dict = {"video_source": "full-length" if full_length else "as lmms-eval reads it"}
    if subtask in BOUNDED and full_length and "start" in row and "end" in row:
        meta["clip"] = [float(row["start"]), float(row["end"])]
    return path, meta


class MVBench:
    name = "mvbench"
    annotation_names = tuple(f"json/{t}.json" for t in SUBTASKS)
    subsets = SUBTASKS
    category_keys = ("subtask",)
    headline = "macro"
    option_counts = (2, 5)
    frame_kinds = ("frames",)  # episodic_reasoning ships a folder of frames per question

    def read(self, root: Path, subset):
        wanted = [t for t in SUBTASKS if subset is None or t in subset]
        files = files_per_task(root, "mvbench", wanted, lambda t: (f"json/{t}.json*", f"{t}.json*"), subset is None)
        samples = []
        for t, files in files.items():
            for path in files:
                for i, row in enumerate(read_records(path)):
                    where = f"mvbench {path.name} record {i}"
                    options, answer_index = candidates_and_answer(row, where)
                    video, where_from = _resolve_video(root, t, row)
                    meta = {"subtask": t, **where_from}
                    meta.update({k: row[k] for k in ("start", "end") if k in row})
                    if t in FRAME_SUBTASKS and where_from["video_source"] == "full-length":
                        meta["video_kind"] = "frames"
                    samples.append(
                        MCQSample(
                            benchmark="mvbench",
                            sample_id=f"{t}/{i}",
                            video_path=video,
                            question=str(row["question"]),
                            options=options,
                            answer_index=answer_index,
                            meta=meta,
                            source=where,
                        )
                    )
        return samples, []

    def format_prompt(self, sample: MCQSample) -> str:
        return prompt_for(sample)
