"""Shared by the bad-input modules (issue 27): a results tree hash, subprocess runners, a tiny
HF-layout checkpoint made the project's own way (replicate.paper.rehearsal)."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def tree_hash(root: Path) -> str:
    """Names, bytes and modes of every file under ``root`` (a missing root hashes as empty)."""
    h = hashlib.sha256()
    if not root.exists():
        return h.hexdigest()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
            h.update(oct(p.stat().st_mode).encode())
    return h.hexdigest()


def tree_files(root: Path) -> dict[str, str]:
    """{relative path: sha256 of its bytes and mode} of every file under ``root`` (a readable diff)."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes() + oct(p.stat().st_mode).encode()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def run(args, *, cwd=REPO, timeout=300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout, **kw)


def snakemake(*args, cwd=REPO, timeout=600) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *args], cwd=cwd, timeout=timeout)


def assert_one_line_error(stderr: str, *needles: str) -> str:
    """stderr is one ``prog: error: ...`` line (plus notes), no traceback; returns that line."""
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip() and not ln.startswith("note:")]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert len(lines) == 1 and ": error: " in lines[0], stderr[-3000:]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]
