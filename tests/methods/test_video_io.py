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


# ----------------------------------------------------------------------------- clip windows, harness rules
def test_window_samples_only_the_clip_and_seeks(tmp_path, monkeypatch):
    """A window [1.0, 1.8) s of a 12-frame 5 fps video holds frames 5..8 (grey 100..160): only those
    are sampled, timestamps restart at 0, and only the picked frames are decoded (seek from their
    keyframe, never the frames before the window one by one)."""
    import methods.video_io as vio

    path = _write_video(tmp_path / "v.mp4", frames=12, fps=5)
    full = load_video(path, 4, 28)
    asked = []
    real = vio.decode_at
    monkeypatch.setattr(vio, "decode_at", lambda p, targets, keys=(): asked.append(list(targets)) or real(p, targets, keys))
    clip = load_video(path, 4, 28, window=(1.0, 1.8))
    grey = (clip.pixel_values[:, 0, 14, 14] + 1) / 2 * 255
    assert torch.allclose(grey, torch.tensor([100.0, 120.0, 140.0, 160.0]), atol=4)
    full_grey = (full.pixel_values[:, 0, 14, 14] + 1) / 2 * 255
    assert not torch.allclose(full_grey, grey, atol=4)  # the whole video samples other frames
    assert torch.allclose(clip.timestamps, torch.tensor([0.0, 0.2, 0.4, 0.6]), atol=1e-4)
    assert clip.total_frames == 4 and clip.duration == pytest.approx(0.8, abs=0.05)
    assert len(asked) == 1 and len(asked[0]) == 4  # four targets, all inside the window


def test_window_errors_name_the_window(tmp_path):
    path = _write_video(tmp_path / "v.mp4", frames=10, fps=5)
    with pytest.raises(ValueError, match=r"clip window \[5.0, 6.0\) s holds no frame"):
        load_video(path, 2, 28, window=(5.0, 6.0))
    with pytest.raises(ValueError, match="0 <= start < end"):
        load_video(path, 2, 28, window=(1.0, 0.5))
    with pytest.raises(ValueError, match="in its clip window but 4 were requested"):
        load_video(path, 4, 28, window=(0.0, 0.4))  # two frames, the project's rule needs four


def test_harness_sampling_rules(tmp_path):
    """lmms-eval's llava_onevision: np.linspace(0, n-1, F, dtype=int) (floor, repeats on a short
    video); llava_vid: one frame per second, linspace only when that gives more than F."""
    from methods.video_io import sample_indices

    assert sample_indices(10, 4, "linspace_floor").tolist() == [0, 3, 6, 9]
    assert sample_indices(11, 4, "linspace_floor").tolist() == [0, 3, 6, 10]   # 3.33 -> 3, round: 3
    assert sample_indices(8, 4, "linspace_floor").tolist() == [0, 2, 4, 7]     # 2.33, 4.67 -> 2, 4
    assert sample_indices(8, 4, "linspace_round").tolist() == [0, 2, 5, 7]
    assert sample_indices(3, 5, "linspace_floor").tolist() == [0, 0, 1, 1, 2]
    assert sample_indices(50, 64, "fps1_then_linspace_floor", fps=5.0).tolist() == list(range(0, 50, 5))
    assert sample_indices(500, 64, "fps1_then_linspace_floor", fps=5.0).tolist() == \
        np.linspace(0, 499, 64).astype(int).tolist()
    path = _write_video(tmp_path / "v.mp4", frames=3, fps=5)
    clip = load_video(path, 5, 28, sampling="linspace_floor")  # decord-style repeats, no error
    assert clip.pixel_values.shape[0] == 5
    short = load_video(_write_video(tmp_path / "w.mp4", frames=12, fps=5), 8, 28, sampling="fps1_then_linspace_floor")
    assert short.pixel_values.shape[0] == 3  # frames 0, 5, 10: one per second
    with pytest.raises(ValueError, match="sampling must be one of"):
        load_video(path, 2, 28, sampling="nearest")
