"""Tiny fake copies of each benchmark in its real on-disk layout, for tests and the smoke run.

``make_fixture(name, root, n)`` writes ``n`` questions (annotations in json; ``parquet=True`` writes
Video-MME's HF parquet instead, which needs pyarrow) and one short clip per question: ``n_frames``
(default 8) frames of ``size`` px (default 64) in a solid colour, encoded with PyAV (libx264, or
mpeg4 where libx264 is not built in). The right answer is always the colour of
the clip, so a model that sees the video could in principle answer it. Multi-task benchmarks
(MVBench, MLVU) spread the ``n`` questions round-robin over two sub-tasks. MVBench's bounded
sub-task (action_sequence) is written as the official release ships it: the full-length source video
(3 x ``n_frames`` frames, other colours before and after) with ``start``/``end`` around the clip in its
middle third, so only a reader that honours the window sees the answer colour alone.
"""
from __future__ import annotations

import json
import warnings
from fractions import Fraction
from pathlib import Path


COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 200, 30),
    "blue": (30, 30, 220),
    "yellow": (230, 220, 30),
    "white": (240, 240, 240),
}
COLOUR_NAMES = tuple(COLOURS)

_CODEC: list[str] = []  # the first codec that encoded here, cached
FIXTURE_FPS = 8


def write_tiny_video(path: Path, colour: tuple[int, int, int], *, n_frames: int = 8, size: int = 64, fps: int = FIXTURE_FPS,
                     colours=None) -> bool:
    """Encode ``n_frames`` solid-colour frames to ``path`` (``colours``: one colour per frame instead);
    False (and an empty file) if PyAV can't."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import av
        import numpy as np
    except ImportError:
        path.write_bytes(b"")
        warnings.warn(f"PyAV not importable; wrote an empty placeholder at {path}", RuntimeWarning, stacklevel=2)
        return False
    per_frame = list(colours) if colours is not None else [colour] * n_frames
    for codec in _CODEC or ["libx264", "mpeg4"]:
        try:
            with av.open(str(path), mode="w") as out:
                stream = out.add_stream(codec, rate=fps)
                stream.width = stream.height = size
                stream.pix_fmt = "yuv420p"
                stream.time_base = Fraction(1, fps)
                for rgb in per_frame:
                    frame = np.empty((size, size, 3), dtype=np.uint8)
                    frame[:] = rgb
                    for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                        out.mux(packet)
                for packet in stream.encode():
                    out.mux(packet)
        except Exception:  # codec not built into this PyAV: try the next one
            continue
        if not _CODEC:
            _CODEC.append(codec)
        return True
    path.write_bytes(b"")
    warnings.warn(f"no PyAV encoder (libx264, mpeg4) worked; wrote an empty placeholder at {path}", RuntimeWarning, stacklevel=2)
    return False


def _dump(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


def _item(i: int, n_options: int = 4) -> tuple[list[str], int, str]:
    """Options (a rotation of the colour names), the answer index, and the clip's colour."""
    opts = [COLOUR_NAMES[(i + j) % len(COLOUR_NAMES)] for j in range(n_options)]
    ans = i % n_options
    return opts, ans, opts[ans]


def make_fixture(name: str, root: Path | str, n: int = 3, *, n_frames: int = 8, size: int = 64,
                 parquet: bool = False) -> Path:
    """Write a tiny ``name`` dataset under ``root`` (created) and return ``root``."""
    if name not in MAKERS:
        raise ValueError(f"unknown benchmark {name!r}; allowed: {', '.join(MAKERS)}")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if parquet and name != "videomme":
        raise ValueError(f"parquet fixtures are written for videomme only (its HF layout), not {name!r}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _VIDEO_ARGS.clear()
    _VIDEO_ARGS.update(n_frames=n_frames, size=size)
    try:
        if parquet:
            _make_videomme(root, n, parquet=True)
        else:
            MAKERS[name](root, n)
    finally:
        _VIDEO_ARGS.clear()
    return root


_VIDEO_ARGS: dict = {}  # frame count / size of the fixture being written (make_fixture's arguments)


def _video(path: Path, colour: tuple[int, int, int]) -> bool:
    return write_tiny_video(path, colour, **_VIDEO_ARGS)


def _make_videomme(root: Path, n: int, parquet: bool = False) -> None:
    durations = ("short", "medium", "long")
    rows = []
    for i in range(n):
        opts, ans, colour = _item(i)
        vid = f"vid{i:03d}"
        rows.append(
            {
                "video_id": f"{i + 1:03d}",
                "duration": durations[i % 3],
                "domain": "Knowledge" if i % 2 == 0 else "Life Record",
                "sub_category": "Technology",
                "url": f"https://example.invalid/{vid}",
                "videoID": vid,
                "question_id": f"{i + 1:03d}-1",
                "task_type": "Attribute Perception",
                "question": f"What colour fills the video {i}?",
                "options": [f"{'ABCD'[j]}. {o}" for j, o in enumerate(opts)],
                "answer": "ABCD"[ans],
            }
        )
        _video(root / "data" / f"{vid}.mp4", COLOURS[colour])
    if parquet:  # the HF copy: videomme/test-00000-of-00001.parquet
        import pandas as pd

        (root / "videomme").mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_parquet(root / "videomme" / "test-00000-of-00001.parquet", index=False)
    else:
        _dump(root / "videomme" / "test.json", rows)


def _make_mvbench(root: Path, n: int) -> None:
    tasks = (("action_sequence", "star/Charades_v1_480"), ("object_existence", "clevrer/video_validation"))
    per_task: dict[str, list] = {t: [] for t, _ in tasks}
    for i in range(n):
        task, folder = tasks[i % 2]
        n_opt = 4 if task == "action_sequence" else 3
        opts, ans, colour = _item(i, n_opt)
        video = f"{task[:3]}{i:03d}.mp4"
        row = {"video": video, "question": f"Which colour is shown in clip {i}?", "candidates": opts, "answer": opts[ans]}
        per_task[task].append(row)
        if task == "action_sequence":  # bounded: the full-length source, the clip in its middle third
            n_f = _VIDEO_ARGS.get("n_frames", 8)
            before, after = (COLOURS[c] for c in [c for c in COLOUR_NAMES if c != colour][:2])
            row.update(start=n_f / FIXTURE_FPS, end=2 * n_f / FIXTURE_FPS)
            write_tiny_video(root / "video" / folder / video, COLOURS[colour], size=_VIDEO_ARGS.get("size", 64),
                             colours=[before] * n_f + [COLOURS[colour]] * n_f + [after] * n_f)
            continue
        _video(root / "video" / folder / video, COLOURS[colour])
    for task, rows in per_task.items():
        if rows:
            _dump(root / "json" / f"{task}.json", rows)


def _make_egoschema(root: Path, n: int) -> None:
    """The original release layout, plus one extra question without a public answer."""
    questions, answers = [], {}
    for i in range(n + 1):
        opts, ans, colour = _item(i, 5)
        uid = f"{i:08d}-0000-4000-8000-{i:012d}"
        questions.append({"q_uid": uid, "question": f"What colour did c see in clip {i}?", **{f"option {j}": o for j, o in enumerate(opts)}})
        if i < n:
            answers[uid] = ans
        _video(root / "videos" / f"{uid}.mp4", COLOURS[colour])
    _dump(root / "questions.json", questions)
    _dump(root / "subset_answers.json", answers)


def _make_longvideobench(root: Path, n: int) -> None:
    groups = (15, 60, 600, 3600)
    rows = []
    for i in range(n):
        opts, ans, colour = _item(i, 5 if i % 2 else 4)
        vid = f"lvb{i:03d}"
        rows.append(
            {
                "id": f"{vid}_0",
                "video_id": vid,
                "video_path": f"{vid}.mp4",
                "subtitle_path": f"{vid}_en.json",
                "question": f"Which colour appears in video {i}?",
                "candidates": opts,
                "correct_choice": ans,
                "duration_group": groups[i % 4],
                "question_category": "S2A" if i % 2 == 0 else "TOS",
                "duration": 1.0,
            }
        )
        _video(root / "videos" / f"{vid}.mp4", COLOURS[colour])
    _dump(root / "lvb_val.json", rows)


def _make_mlvu(root: Path, n: int) -> None:
    tasks = (("plotQA", "1_plotQA"), ("count", "4_count"))
    per_task: dict[str, list] = {f: [] for _, f in tasks}
    for i in range(n):
        task, fname = tasks[i % 2]
        opts, ans, colour = _item(i)
        video = f"{task}{i:03d}.mp4"
        per_task[fname].append(
            {"video": video, "duration": 1.0, "question": f"What is the colour of clip {i}?", "candidates": opts, "answer": opts[ans], "question_type": task}
        )
        _video(root / "video" / fname / video, COLOURS[colour])
    for fname, rows in per_task.items():
        if rows:
            _dump(root / "json" / f"{fname}.json", rows)


def _make_lvbench(root: Path, n: int) -> None:
    """The official layout: video_info.meta.jsonl (one line per video, two questions per video here,
    the options written into the question) and videos/<key>.mp4."""
    types = ("key information retrieval", "entity recognition", "reasoning")
    lines = []
    for v in range((n + 1) // 2):
        colour = COLOUR_NAMES[v % len(COLOUR_NAMES)]
        key = f"yt{v:03d}xyz"
        qa = []
        for i in range(2 * v, min(2 * v + 2, n)):
            ans = i % 4
            others = [c for c in COLOUR_NAMES if c != colour][i % 2:][:3]
            opts = others[:ans] + [colour] + others[ans:]
            question = f"What colour fills the video {key}?\n" + "\n".join(f"({'ABCD'[j]}) {o}" for j, o in enumerate(opts))
            qa.append({"uid": 100 + i, "question": question, "answer": "ABCD"[ans],
                       "question_type": list(types[i % 3:i % 3 + 1 + i % 2]), "time_reference": "00:00-00:01"})
        lines.append({"key": key, "type": "documentary" if v % 2 == 0 else "sports",
                      "video_info": {"duration_minutes": 1 / 60, "fps": 8.0,
                                     "resolution": {"width": _VIDEO_ARGS["size"], "height": _VIDEO_ARGS["size"]}},
                      "qa": qa})
        _video(root / "videos" / f"{key}.mp4", COLOURS[colour])
    (root / "video_info.meta.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


#: benchmark name -> writer of its fixture (one per name of BENCHMARKS, in that order)
MAKERS = {"videomme": _make_videomme, "mvbench": _make_mvbench, "egoschema": _make_egoschema,
          "longvideobench": _make_longvideobench, "mlvu": _make_mlvu, "lvbench": _make_lvbench}
