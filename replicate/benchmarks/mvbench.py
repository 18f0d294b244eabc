"""MVBench (OpenGVLab/MVBench): 20 temporal sub-tasks x 200 questions, 2-5 options.

Layout of the HF copy (facts from the dataset card, the MVBench evaluation notebook and
lmms-eval's mvbench task): ``json/<sub_task>.json``, each a list of {video, question, candidates,
answer (the text of the right candidate)}; some sub-tasks add start/end seconds of the clip. The
videos come as zips under ``video/`` whose folders differ per source dataset; lmms-eval expects
pre-cut "_segment" copies for a few of them. We look in both the official and lmms-eval folders,
under ``video/`` and directly under the root. episodic_reasoning (TVQA) ships frame folders.
"""
from __future__ import annotations

from pathlib import Path

from .base import MCQSample, candidates_and_answer, files_per_task, first_existing, read_records
from .prompts import MVBENCH_OPTION_HEADER, MVBENCH_POST, MVBENCH_QUESTION, lettered

# sub-task -> candidate video folders (official MVBench first, then lmms-eval's DATA_LIST folder).
VIDEO_FOLDERS: dict[str, tuple[str, ...]] = {
    "action_sequence": ("star/Charades_v1_480", "star/Charades_segment"),
    "action_prediction": ("star/Charades_v1_480", "star/Charades_segment"),
    "action_antonym": ("ssv2_video", "ssv2_video_mp4"),
    "fine_grained_action": ("Moments_in_Time_Raw/videos",),
    "unexpected_action": ("FunQA_test/test",),
    "object_existence": ("clevrer/video_validation",),
    "object_interaction": ("star/Charades_v1_480", "star/Charades_segment"),
    "object_shuffle": ("perception/videos",),
    "moving_direction": ("clevrer/video_validation",),
    "action_localization": ("sta/sta_video", "sta/sta_video_segment"),
    "scene_transition": ("scene_qa/video",),
    "action_count": ("perception/videos",),
    "moving_count": ("clevrer/video_validation",),
    "moving_attribute": ("clevrer/video_validation",),
    "state_change": ("perception/videos",),
    "fine_grained_pose": ("nturgbd", "nturgbd_convert"),
    "character_order": ("perception/videos",),
    "egocentric_navigation": ("vlnqa",),
    "episodic_reasoning": ("tvqa/frames_fps3_hq", "tvqa/video_fps3_hq_segment"),
    "counterfactual_inference": ("clevrer/video_validation",),
}
SUBTASKS = tuple(VIDEO_FOLDERS)
FRAME_SUBTASKS = frozenset({"episodic_reasoning"})


def _video_candidates(root: Path, subtask: str, video: str) -> list[Path]:
    out = []
    for base in (root / "video", root, root / "data0613"):
        out += [base / folder / video for folder in VIDEO_FOLDERS[subtask]]
    return out


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
                    meta = {"subtask": t}
                    meta.update({k: row[k] for k in ("start", "end") if k in row})
                    if t in FRAME_SUBTASKS:
                        meta["video_kind"] = "frames"
                    samples.append(
                        MCQSample(
                            benchmark="mvbench",
                            sample_id=f"{t}/{i}",
                            video_path=first_existing(_video_candidates(root, t, str(row["video"]))),
                            question=str(row["question"]),
                            options=options,
                            answer_index=answer_index,
                            meta=meta,
                            source=where,
                        )
                    )
        return samples, []

    def format_prompt(self, sample: MCQSample) -> str:
        options = "".join(o + "\n" for o in lettered(sample.options, "paren"))
        return f"{MVBENCH_QUESTION}{sample.question}{MVBENCH_OPTION_HEADER}{options}{MVBENCH_POST}"
