"""methods.video_io: PyAV decoding, uniform sampling with timestamps, resize and normalisation."""
from __future__ import annotations

import json

import av
import numpy as np
import pytest
import torch

from methods.video_io import load_preprocessor_stats, load_video, preprocess, uniform_indices


def _write_video(path, frames=10, fps=5, size=32):
    """Frame i is a flat grey image of value 20 * i (so frames are identifiable after decoding)."""
    with av.open(str(path), mode="w") as c:
        try:
            s = c.add_stream("libx264", rate=fps)
        except Exception:  # pragma: no cover - build without x264
            s = c.add_stream("mpeg4", rate=fps)
        s.width = s.height = size
        s.pix_fmt = "yuv420p"
        for i in range(frames):
            img = np.full((size, size, 3), 20 * i, dtype=np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def test_uniform_sampling_timestamps_and_values(tmp_path):
    path = _write_video(tmp_path / "v.mp4", frames=10, fps=5)
    clip = load_video(path, 4, 28)
    assert uniform_indices(10, 4).tolist() == [0, 3, 6, 9]
    assert clip.pixel_values.shape == (4, 3, 28, 28) and clip.total_frames == 10
    assert torch.allclose(clip.timestamps, torch.tensor([0.0, 0.6, 1.2, 1.8]), atol=1e-4)
    assert clip.duration == pytest.approx(2.0, abs=0.05)
    # grey level 20*i -> (20*i/255 - 0.5) / 0.5 with SigLIP's mean = std = 0.5 (codec error ~ +-3/255)
    expected = torch.tensor([0, 60, 120, 180]) / 255.0 * 2 - 1
    assert torch.allclose(clip.pixel_values.mean(dim=(1, 2, 3)), expected, atol=0.03)


def test_preprocess_resize_and_normalise_by_hand():
    frames = np.zeros((1, 4, 4, 3), dtype=np.uint8)
    frames[0, :, :2] = 255                       # left half white
    x = preprocess(frames, 2, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert x.shape == (1, 3, 2, 2)
    # antialiased bilinear (as PIL / the HF processors): the edge blends, symmetrically
    assert torch.allclose(x[0, 0, :, 1], -x[0, 0, :, 0]) and bool((x[0, 0, :, 0] > 0.5).all())
    white = preprocess(np.full((1, 6, 6, 3), 255, dtype=np.uint8), 3, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert torch.allclose(white, torch.ones(1, 3, 3, 3))
    y = preprocess(frames, 4, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))   # no resize, only / 255
    assert torch.equal(y[0, 1, 0], torch.tensor([1.0, 1.0, 0.0, 0.0]))


def test_preprocessor_stats_from_checkpoint(tmp_path):
    assert load_preprocessor_stats(tmp_path) == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.1, 0.2, 0.3],
                                                                   "image_std": [1, 2, 3]}))
    assert load_preprocessor_stats(tmp_path) == ((0.1, 0.2, 0.3), (1, 2, 3))


def test_errors_name_path_and_counts(tmp_path):
    missing = tmp_path / "missing.mp4"
    with pytest.raises(ValueError, match=f"{missing}.*does not exist"):
        load_video(missing, 4, 28)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    with pytest.raises(ValueError, match=f"{corrupt}"):
        load_video(corrupt, 4, 28)
    short = _write_video(tmp_path / "short.mp4", frames=3)
    with pytest.raises(ValueError, match=f"{short}.* has 3 decodable frames but 8 were requested"):
        load_video(short, 8, 28)
    with pytest.raises(ValueError, match="frames must be an int >= 1"):
        load_video(short, 0, 28)


def test_adapter_loads_and_encodes_a_file(tmp_path):
    from methods.adapters import LlavaOnevisionAdapter

    ad = LlavaOnevisionAdapter.tiny("llava-video", layers=2)
    clip = ad.load_video(_write_video(tmp_path / "v.mp4", frames=5), 3)  # frames 0, 2, 4 at 5 fps
    assert clip.pixel_values.shape == (3, 3, 56, 56)
    vt = ad.encode_video(clip.pixel_values, clip.timestamps)
    assert vt.features.shape == (3, 4, 128) and torch.equal(vt.timestamps, clip.timestamps)
    assert "lasts for 1.00 seconds" in ad.prompt_text("Q", vt, clip.duration)
    assert "located at 0.00s,0.40s,0.80s." in ad.prompt_text("Q", vt, clip.duration)
