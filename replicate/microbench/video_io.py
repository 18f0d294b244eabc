"""Peak memory of ``load_video`` on a long 720p video: JSON for the record (not a unit test).

    python -m replicate.microbench.video_io --minutes 60 --fps 2 --out results/bench/video_io_memory.json

The video is generated here with PyAV (x264 ultrafast, keyframe every ``gop`` frames): 1280x720
frames of low complexity (a grey gradient with a moving bar), so encoding an hour stays cheap. It
stands for an hour-long 720p source at ``fps`` frames per second (VideoMME-long scale); decoder
memory per frame is the same at any frame rate, and ``load_video`` keeps only the sampled frames,
so the peak does not grow with the frame count. Each measurement runs in a fresh subprocess and
reports its peak RSS (``ru_maxrss``) minus the RSS of the same process before loading.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path


def make_long_video(path: Path, *, minutes: float, fps: int, width: int = 1280, height: int = 720,
                    gop: int = 250) -> dict:
    import av
    import numpy as np

    n = int(round(minutes * 60 * fps))
    t0 = time.perf_counter()
    base = np.tile(np.linspace(0, 255, width, dtype=np.uint8)[None, :, None], (height, 1, 3))
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "g": str(gop)})
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        for i in range(n):
            img = base.copy()
            x = (i * 7) % (width - 40)
            img[:, x:x + 40] = 255 - img[:, x:x + 40]  # the moving bar: every frame differs
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return {"frames": n, "fps": fps, "width": width, "height": height, "gop": gop,
            "seconds": n / fps, "bytes": path.stat().st_size, "encode_s": time.perf_counter() - t0}


_CHILD = """
import json, resource, sys, time
import torch  # noqa: F401  (imported before the baseline RSS is read)
from methods.video_io import load_video
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
clip = load_video(sys.argv[1], int(sys.argv[2]), 384)
wall = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"frames": int(sys.argv[2]), "baseline_rss_mb": before / 1024, "peak_rss_mb": peak / 1024,
                  "load_video_extra_mb": (peak - before) / 1024, "wall_s": wall,
                  "decodable_frames": clip.total_frames}))
"""


def measure(path: Path, frames: int) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(frames)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m replicate.microbench.video_io")
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--fps", type=int, default=2)
    p.add_argument("--frames", default="8,32", help="comma-separated sampled frame counts")
    p.add_argument("--video", default="", help="reuse this generated video (default: generate next to --out)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    out = Path(args.out)
    video = Path(args.video) if args.video else out.with_suffix(".mp4")
    video_info = {"path": str(video), "generated": not video.is_file()}
    if not video.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        video_info.update(make_long_video(video, minutes=args.minutes, fps=args.fps))
    runs = [measure(video, int(f)) for f in args.frames.split(",")]
    from replicate.io import write_json

    write_json(out, {"video": video_info, "runs": runs, "python": platform.python_version(),
                     "what": "peak RSS of methods.video_io.load_video on a long low-complexity 720p video"})
    print(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
