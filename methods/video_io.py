"""Decode a local video with PyAV and preprocess it for a SigLIP tower (no torchvision).

Steps: decode every frame (timestamps from the stream's pts), pick ``F`` frames uniformly
(``round(linspace(0, n - 1, F))``, as LLaVA-NeXT/lmms-eval sample), resize to ``size x size`` with
bilinear ``torch.nn.functional.interpolate`` (``align_corners=False``, antialias), scale 1/255 and
normalise with the processor's mean/std. LLaVA-OV's SigLIP processor uses mean = std = 0.5 per
channel; ``load_preprocessor_stats`` reads them from a checkpoint's ``preprocessor_config.json``
when there is one and falls back to 0.5/0.5 otherwise.
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
    total_frames: int            # decodable frames in the file
    path: str


def load_preprocessor_stats(checkpoint_dir) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) from ``preprocessor_config.json`` in a checkpoint dir, else SigLIP's 0.5/0.5."""
    f = Path(checkpoint_dir) / "preprocessor_config.json"
    if f.is_file():
        d = json.loads(f.read_text())
        return tuple(d.get("image_mean", SIGLIP_MEAN)), tuple(d.get("image_std", SIGLIP_STD))
    return SIGLIP_MEAN, SIGLIP_STD


def uniform_indices(total: int, frames: int) -> np.ndarray:
    return np.round(np.linspace(0, total - 1, frames)).astype(np.int64)


def decode_frames(path) -> tuple[list[np.ndarray], list[float], float]:
    """All decodable RGB frames (H, W, 3 uint8), their timestamps (s) and the duration (s)."""
    import av

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"video file {str(path)!r} does not exist")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{str(path)!r} has no video stream")
            stream = container.streams.video[0]
            tb = float(stream.time_base) if stream.time_base is not None else None
            frames, times = [], []
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                if frame.pts is not None and tb is not None:
                    times.append(float(frame.pts) * tb)
                else:
                    times.append(float(frame.time) if frame.time is not None else float(len(times)))
            duration = float(container.duration) / 1e6 if container.duration else 0.0
    except ValueError:
        raise
    except Exception as exc:  # av.error.InvalidDataError and friends
        raise ValueError(f"cannot decode video {str(path)!r}: {exc}") from exc
    if times:
        start = times[0]
        times = [t - start for t in times]
        rate = (times[-1] / (len(times) - 1)) if len(times) > 1 else 0.0
        duration = max(duration, times[-1] + rate)
    return frames, times, duration


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
               std: Sequence[float] = SIGLIP_STD) -> VideoClip:
    """Decode ``path``, sample ``frames`` frames uniformly, preprocess to ``size``."""
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise ValueError(f"frames must be an int >= 1, got {frames!r}")
    decoded, times, duration = decode_frames(path)
    if len(decoded) < frames:
        raise ValueError(f"video {str(path)!r} has {len(decoded)} decodable frames but {frames} were requested")
    idx = uniform_indices(len(decoded), frames)
    pixels = preprocess(np.stack([decoded[i] for i in idx]), size, mean, std)
    ts = torch.tensor([times[i] for i in idx], dtype=torch.float32)
    return VideoClip(pixels, ts, duration, len(decoded), str(path))
