"""Atomic result writing: a failed or interrupted job never leaves a half-written file behind.

``atomic_path``, ``write_text`` and ``write_csv`` are ``figures.files``'s (one implementation for
figures and workflow); ``write_json`` adds the workflow's JSON conventions.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from figures.files import atomic_path, write_csv, write_text

__all__ = ["atomic_path", "write_text", "write_csv", "write_json"]


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """NaN/inf are rejected: they are not JSON, and a result that holds one is a bug upstream."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_default,
                                       allow_nan=False) + "\n")


def _default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
