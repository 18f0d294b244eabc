"""Decode a local video with PyAV and preprocess it for a SigLIP tower (no torchvision).

Steps: index the stream's packets (demux only, no decoding: one timestamp per frame), pick ``F``
frames uniformly (``round(linspace(0, n - 1, F))``, as LLaVA-NeXT/lmms-eval sample), then seek to
each picked frame and decode only from its keyframe to it, so memory holds ``F`` frames whatever
the video's length (an hour of 720p is ~100 k frames; decoding them all into RAM needed ~2.8 GB for
30 s). Resize to ``size x size`` with bilinear ``torch.nn.functional.interpolate``
(``align_corners=False``, antialias), scale 1/255 and normalise with the processor's mean/std.
LLaVA-OV's SigLIP processor uses mean = std = 0.5 per channel; ``load_preprocessor_stats`` reads
them from a checkpoint's ``preprocessor_config.json`` when there is one and falls back to 0.5/0.5.

``window=(start, end)`` (seconds from the first frame) samples only the frames whose time lies in
[start, end): the index is still demux-only, and only the picked frames' groups of pictures are
decoded (seek), never the rest of the video; MVBench's bounded sub-tasks give such a window when only
the full-length source video is on disk. ``sampling`` picks the frame rule of an evaluation harness:
``linspace_round`` (this project's default), ``linspace_floor`` (lmms-eval's llava_onevision wrapper:
``np.linspace(0, n - 1, F, dtype=int)``, indices may repeat on a short video) and
``fps1_then_linspace_floor`` (lmms-eval's llava_vid / VLMEvalKit's LLaVA: one frame per second,
``linspace_floor`` down to ``F`` only when that gives more; a short video yields fewer than ``F``).

A truncated file (the container declares more frames than it holds, or decoding stops early) is
sampled from its decodable span with a warning (``on_truncated="warn"``, the default) or refused
(``"error"``). Every decoder error is re-raised as ValueError naming the file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)


@dataclass
class VideoClip:
    pixel_values: torch.Tensor   # (F, 3, size, size) normalised float32
    timestamps: torch.Tensor     # (F,) seconds
    duration: float              # seconds (last decoded frame's end, or the container duration)
    total_frames: int            # decodable frames in the file (the span sampled from)
    path: str
    declared_frames: int = 0     # frames the container header declares (0: not stated)
    truncated: bool = False      # fewer frames decodable than declared: sampled from the decodable span


ON_TRUNCATED = ("warn", "error")
SAMPLING = ("linspace_round", "linspace_floor", "fps1_then_linspace_floor")


def load_preprocessor_stats(checkpoint_dir) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) from ``preprocessor_config.json`` in a checkpoint dir, else SigLIP's 0.5/0.5."""
    f = Path(checkpoint_dir) / "preprocessor_config.json"
    if f.is_file():
        d = json.loads(f.read_text())
        return tuple(d.get("image_mean", SIGLIP_MEAN)), tuple(d.get("image_std", SIGLIP_STD))
    return SIGLIP_MEAN, SIGLIP_STD


def uniform_indices(total: int, frames: int) -> np.ndarray:
    return np.round(np.linspace(0, total - 1, frames)).astype(np.int64)


def sample_indices(total: int, frames: int, sampling: str = "linspace_round", fps: float = 0.0) -> np.ndarray:
    """Indices of the frames to decode out of ``total`` under ``sampling`` (see the module doc);
    ``fps`` is the stream's average frame rate (``fps1_then_linspace_floor`` steps by round(fps))."""
    if sampling == "linspace_round":
        return uniform_indices(total, frames)
    if sampling == "linspace_floor":
        return np.linspace(0, total - 1, frames).astype(np.int64)
    if sampling == "fps1_then_linspace_floor":
        step = max(int(round(fps)), 1)
        idx = np.arange(0, total, step, dtype=np.int64)
        return np.linspace(0, total - 1, frames).astype(np.int64) if len(idx) > frames else idx
    raise ValueError(f"sampling must be one of {list(SAMPLING)}, got {sampling!r}")


def in_window(pts: Sequence[int], tb: float, window) -> list[int]:
    """The pts whose time from the first frame lies in [start, end) seconds; ValueError if none."""
    start, end = (float(x) for x in window)
    if not (np.isfinite(start) and np.isfinite(end)) or end <= start or start < 0:
        raise ValueError(f"clip window must be 0 <= start < end seconds, got {tuple(window)!r}")
    t0 = pts[0] if pts else 0
    kept = [p for p in pts if start <= (p - t0) * tb < end]
    if not kept:
        raise ValueError(f"clip window [{start}, {end}) s holds no frame of the video "
                         f"({len(pts)} frames, {((pts[-1] - t0) * tb if pts else 0):.2f} s)")
    return kept


def _open(path):
    import av

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"video file {str(path)!r} does not exist")
    try:
        container = av.open(str(path))
    except Exception as exc:  # av.error.InvalidDataError and friends
        raise ValueError(f"cannot decode video {str(path)!r}: {exc}") from exc
    if not container.streams.video:
        container.close()
        raise ValueError(f"{str(path)!r} has no video stream")
    return container


def index_frames(path) -> tuple[list[int], int, float, float, bool, list[int]]:
    """(sorted pts of every demuxed frame, declared frame count, time base, container duration (s),
    whether demuxing stopped on an error, sorted keyframe pts). Reads packets only: nothing decoded."""
    container = _open(path)
    with container:
        stream = container.streams.video[0]
        tb = float(stream.time_base) if stream.time_base is not None else 0.0
        pts, keys, broken = [], [], False
        try:
            for packet in container.demux(stream):
                if packet.pts is not None and packet.size:
                    pts.append(int(packet.pts))
                    if packet.is_keyframe:
                        keys.append(int(packet.pts))
        except Exception:  # noqa: BLE001 - a damaged tail: the span before it is what exists
            broken = True
        duration = float(container.duration) / 1e6 if container.duration else 0.0
        return sorted(pts), int(stream.frames or 0), tb, duration, broken, sorted(keys)


def decode_at(path, targets: Sequence[int], keyframes: Sequence[int] = ()) -> dict[int, np.ndarray]:
    """RGB frames (H, W, 3 uint8) at the given pts, decoding only from the keyframe before each
    (no seek when the next target is in the group of pictures being decoded). A pts that cannot be
    decoded is missing from the result (the caller reports truncation)."""
    import bisect

    container = _open(path)
    out: dict[int, np.ndarray] = {}
    with container:
        stream = container.streams.video[0]
        frames_iter, position = None, None
        for t in sorted(set(int(x) for x in targets)):
            k = bisect.bisect_right(list(keyframes), t) - 1
            same_gop = position is not None and k >= 0 and keyframes[k] <= position
            try:
                if frames_iter is None or not same_gop:
                    container.seek(t, stream=stream, backward=True, any_frame=False)
                    frames_iter = container.decode(stream)
                for frame in frames_iter:
                    if frame.pts is None or frame.pts < t:
                        continue
                    position = int(frame.pts)
                    out[t] = frame.to_ndarray(format="rgb24")
                    break
            except Exception:  # noqa: BLE001 - undecodable from here on: reported as truncation
                break
    return out


def decodable_pts(path, pts: Sequence[int]) -> list[int]:
    """The pts that actually decode (one sequential pass, frames discarded as they come): used only
    for a truncated file, to find the span that can be sampled."""
    container = _open(path)
    got = []
    with container:
        try:
            for frame in container.decode(container.streams.video[0]):
                if frame.pts is not None:
                    got.append(int(frame.pts))
        except Exception:  # noqa: BLE001 - the damaged tail
            pass
    return sorted(set(got) & set(pts)) if pts else sorted(got)


def preprocess(frames: np.ndarray, size: int, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(F, H, W, 3) uint8 -> (F, 3, size, size) float32: bilinear resize, /255, (x - mean) / std."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    if x.shape[-2:] != (size, size):
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                                            antialias=True)
    x = (x / 255.0).clamp_(0.0, 1.0)
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - m) / s


def load_video(path, frames: int, size: int, mean: Sequence[float] = SIGLIP_MEAN,
               std: Sequence[float] = SIGLIP_STD, *, on_truncated: str = "warn", window=None,
               sampling: str = "linspace_round") -> VideoClip:
    """Sample ``frames`` frames of ``path`` (of its ``window`` when given) under ``sampling``,
    decoding only those, preprocess to ``size``."""
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise ValueError(f"frames must be an int >= 1, got {frames!r}")
    if on_truncated not in ON_TRUNCATED:
        raise ValueError(f"on_truncated must be one of {list(ON_TRUNCATED)}, got {on_truncated!r}")
    if sampling not in SAMPLING:
        raise ValueError(f"sampling must be one of {list(SAMPLING)}, got {sampling!r}")
    pts, declared, tb, duration, broken, keys = index_frames(path)
    truncated = broken or (declared > 0 and len(pts) < declared)
    if truncated:
        pts = decodable_pts(path, pts)
    span = in_window(pts, tb, window) if window is not None else pts
    picked, decoded = _decode_sampled(path, span, frames, keys, sampling, tb)
    if len(decoded) < len(set(picked)):  # the index promised frames the decoder cannot produce
        truncated = True
        pts = decodable_pts(path, pts)
        span = in_window(pts, tb, window) if window is not None else pts
        picked, decoded = _decode_sampled(path, span, frames, keys, sampling, tb)
    if truncated:
        _report_truncation(path, len(pts), declared, on_truncated)
    if not picked or len(decoded) < len(set(picked)):
        raise ValueError(f"video {str(path)!r} has {len(span)} decodable frames"
                         f"{' in its clip window' if window is not None else ''} but {frames} were requested")
    if window is not None:
        pts = span
    times = [(p - pts[0]) * tb for p in pts]
    rate = (times[-1] / (len(times) - 1)) if len(times) > 1 else 0.0
    duration = max(duration if not (truncated or window is not None) else 0.0, times[-1] + rate)
    # one frame at a time: a float copy of F full-resolution frames would be the peak (354 MB at 32 x 720p)
    pixels = torch.cat([preprocess(decoded[p][None], size, mean, std) for p in picked])
    ts = torch.tensor([(p - pts[0]) * tb for p in picked], dtype=torch.float32)
    return VideoClip(pixels, ts, duration, len(pts), str(path), declared_frames=declared, truncated=truncated)


def _decode_sampled(path, pts: list[int], frames: int, keys, sampling: str,
                    tb: float) -> tuple[list[int], dict[int, np.ndarray]]:
    """(picked pts, decoded frames); the project's rule needs ``frames`` distinct frames, the
    harnesses' rules take what their index arithmetic gives (repeats, or fewer frames)."""
    if not pts or (sampling == "linspace_round" and len(pts) < frames):
        return [], {}
    span_s = (pts[-1] - pts[0]) * tb
    fps = (len(pts) - 1) / span_s if span_s > 0 else 0.0
    picked = [pts[i] for i in sample_indices(len(pts), frames, sampling, fps)]
    return picked, decode_at(path, picked, keys)


def _report_truncation(path, decodable: int, declared: int, on_truncated: str) -> None:
    import warnings

    msg = (f"video {str(path)!r} is truncated: {decodable} of {declared or 'an unknown number of'} declared "
           f"frames decode")
    if on_truncated == "error":
        raise ValueError(msg + " (on_truncated='error'; pass on_truncated='warn' to sample the decodable span)")
    warnings.warn(msg + "; sampling from the decodable span only", RuntimeWarning, stacklevel=3)
