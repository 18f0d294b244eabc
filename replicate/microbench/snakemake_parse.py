"""Wall time of ``snakemake -n`` on the default target, and whether parsing the workflow imported
torch (it must not: every job of a cluster run parses the Snakefile again).

    python -m replicate.microbench.snakemake_parse --out results/bench/snakemake_parse.json \
        [--repo OTHER_CHECKOUT ...] [--repeats 5]

Each run is a fresh Python process that runs Snakemake's command line in-process (``snakemake -n
--quiet`` in an empty working directory, so every checkout plans the same DAG) and reports whether
``torch`` ended up in ``sys.modules``; the wall time is measured around the process, interpreter
start included, as a user's ``snakemake -n`` pays it. With several checkouts (``--repo``, e.g. a
copy of another commit) the runs alternate between them, so load drift hits all alike; the load
average before and after is recorded beside the times (the target, <= 3 s, is for an idle 2-core
machine).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[2]

_CHILD = """
import json, sys
from snakemake.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"exit": code, "torch_imported": "torch" in sys.modules}))
"""


def parse_once(repo: Path, workdir: Path, targets: Sequence[str] = ()) -> dict:
    """One ``snakemake -n`` of ``repo``'s Snakefile in ``workdir``: wall seconds, exit code and
    whether torch was imported (the checkout's own packages first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", _CHILD, "-s", str(repo / "Snakefile"), "-d", str(workdir), "-n", "--quiet",
           *targets]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir, timeout=600)
    wall = time.perf_counter() - t0
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "{}"
    try:
        result = json.loads(last)
    except json.JSONDecodeError:
        result = {}
    if proc.returncode or result.get("exit") not in (0, None):
        raise RuntimeError(f"snakemake -n failed for {repo}:\n{proc.stderr[-3000:]}")
    return {"wall_s": wall, "torch_imported": bool(result.get("torch_imported"))}


def floor_once() -> float:
    """Wall seconds of ``snakemake --version`` the same way: what Snakemake itself costs to start."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", _CHILD, "--version"], capture_output=True, text=True, timeout=600,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    return time.perf_counter() - t0


def measure(repos: Sequence[Path], repeats: int, targets: Sequence[str] = ()) -> dict:
    """Interleaved runs of every checkout and of Snakemake's own start (one warm-up each first,
    for the file cache)."""
    runs: dict[str, list[dict]] = {str(r): [] for r in repos}
    floor: list[float] = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {str(r): Path(tmp) / f"w{i}" for i, r in enumerate(repos)}
        for d in dirs.values():
            d.mkdir()
        for r in repos:
            parse_once(r, dirs[str(r)], targets)
        floor_once()
        for _ in range(repeats):
            for r in repos:
                runs[str(r)].append(parse_once(r, dirs[str(r)], targets))
            floor.append(floor_once())
    load_after = os.getloadavg()
    out = {}
    for repo, rs in runs.items():
        walls = [x["wall_s"] for x in rs]
        out[repo] = {"median_s": statistics.median(walls), "min_s": min(walls), "runs_s": walls,
                     "torch_imported": any(x["torch_imported"] for x in rs), "commit": _commit(Path(repo))}
    return {"what": "wall time of `snakemake -n --quiet` (default target, empty working directory), "
                    "interpreter start included; torch_imported: whether parsing imported torch",
            "targets": list(targets) or ["(default)"], "repeats": repeats, "cpus": os.cpu_count(),
            "snakemake_version_s": {"median_s": statistics.median(floor), "runs_s": floor,
                                    "what": "`snakemake --version` timed alike: Snakemake's own start, the floor"},
            "load_average_before": list(load_before), "load_average_after": list(load_after),
            "checkouts": out}


def _commit(repo: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=30).stdout.strip() or "unknown (not a git checkout)"
    except OSError:
        return "unknown"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m replicate.microbench.snakemake_parse", description=__doc__.split("\n\n")[0])
    p.add_argument("--repo", action="append", default=[], help="another checkout to time beside this one")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error(f"--repeats must be >= 1, got {args.repeats}")
    repos = [REPO, *(Path(r).resolve() for r in args.repo)]
    result = measure(repos, args.repeats)
    from replicate.io import write_json

    write_json(args.out, result)
    for repo, r in result["checkouts"].items():
        print(f"{repo} ({r['commit']}): median {r['median_s']:.2f} s, min {r['min_s']:.2f} s, "
              f"torch imported: {r['torch_imported']}")
    print(f"snakemake --version (the floor): median {result['snakemake_version_s']['median_s']:.2f} s")
    print(f"load average before {result['load_average_before']}, after {result['load_average_after']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
