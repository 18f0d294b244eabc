"""Provenance stamped into every result file: code version, environment, device and settings."""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("torch", "transformers", "snakemake", "numpy", "pandas", "jsonschema", "pyyaml", "fvcore",
            "matplotlib")


@lru_cache(maxsize=None)
def git_state(repo: str | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the repository (None when git or the repo is unavailable)."""
    cwd = repo or str(REPO)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        # Untracked source files change what runs, so they count; ignored outputs (results/) do not.
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=cwd,
                                    capture_output=True, text=True, timeout=10, check=True).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


@lru_cache(maxsize=None)
def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def config_hash(config: Mapping[str, Any]) -> str:
    """Stable short hash of a config mapping (sorted-key JSON, sha256)."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def device_description(device: str = "cpu") -> str:
    if device.startswith("cuda"):
        try:
            import torch

            return torch.cuda.get_device_name(torch.device(device))
        except Exception as exc:  # noqa: BLE001 - provenance must never fail the result
            return f"{device} (name unavailable: {exc})"
    return f"cpu: {platform.processor() or platform.machine()}"


def provenance(config: Mapping[str, Any] | None = None, *, device: str = "cpu", dtype: str | None = None,
               seed: int | None = None, attn_implementation: str | None = None,
               extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The provenance block of a result file."""
    record = {
        **git_state(),
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": device_description(device),
        "dtype": dtype,
        "attn_implementation": attn_implementation,
        "seed": seed,
        "config_hash": config_hash(config or {}),
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if extra:
        record.update(extra)
    return record
