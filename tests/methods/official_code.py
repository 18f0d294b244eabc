"""Run one pure-torch function of an official repository beside ours, when a local mirror has it.

The official file is read from a git mirror of the repository (``$OFFICIAL_MIRROR/<owner>+<name>/repo``,
default ``/work/.mirror``, as the project's ``fetch`` tool writes it) at a pinned commit; only the
named top-level function is parsed out of it and executed in a namespace with torch -- its
module-level imports (the rest of that code base) are not needed and not run. Nothing of it is
stored in this project. Where no mirror is present (CI, a fresh clone) the test is skipped, and
the hand-worked tests beside it still run.
"""
from __future__ import annotations

import ast
import math
import os
import subprocess
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import pytest
import torch
import torch.nn.functional as F


def official_function(repo: str, commit: str, path: str, name: str) -> Callable:
    """The function ``name`` of ``repo``'s ``path`` at ``commit`` (skips the test when unavailable)."""
    git_dir = Path(os.environ.get("OFFICIAL_MIRROR", "/work/.mirror")) / repo.replace("/", "+") / "repo"
    if not git_dir.is_dir():
        pytest.skip(f"no local mirror of {repo} at {git_dir} (set OFFICIAL_MIRROR)")
    out = subprocess.run(["git", "--git-dir", str(git_dir), "show", f"{commit}:{path}"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"{repo}@{commit}:{path} not in the mirror: {out.stderr.strip()}")
    source = out.stdout
    node = next((n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == name), None)
    if node is None:
        pytest.skip(f"{name} is not a top-level function of {repo}@{commit}:{path}")
    namespace = {"torch": torch, "F": F, "math": math, "Optional": Optional, "Tuple": Tuple, "List": List}
    exec(compile(ast.get_source_segment(source, node), f"{repo}@{commit[:7]}:{path}", "exec"), namespace)
    return namespace[name]
