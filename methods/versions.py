"""The library versions this code supports, stated once (pyproject.toml and the README say the same).

- torch >= 2.11: the GPU image's (2.11.0+cu130); CI tests 2.13.0 (a CPU build of 2.11 is not on PyPI).
- transformers >= 5.17 for the runtime and the LLaVA-OneVision / LLaVA-Video / Qwen2.5-VL adapters:
  the GPU image's release, tested in CI's floor environment.
- transformers >= 5.24 for Molmo2 (STTS's backbone): ``models.molmo2`` first ships in 5.20, and from
  5.24 its forward takes and returns the KV cache as ``cache`` (``out.cache``), which the Molmo2
  adapter uses; below 5.24 building a Molmo2 model stops with :class:`UnsupportedVersion`.

The device script (``replicate/gpu``) carries a transformers >= 5.24 wheel to a GPU image that has an
older one, so every adapter runs there.
"""
from __future__ import annotations

import re

TORCH_FLOOR = "2.11"
TRANSFORMERS_FLOOR = "5.17"
MOLMO2_TRANSFORMERS_FLOOR = "5.24"


class UnsupportedVersion(RuntimeError):
    """An installed library is older than what a model family needs."""


def version_tuple(version: str) -> tuple[int, ...]:
    """'5.24.0.dev0' / '2.11.0+cu130' -> (5, 24, 0): the leading numeric release parts."""
    parts = []
    for p in re.split(r"[.+]", str(version)):
        m = re.match(r"\d+", p)
        if not m:
            break
        parts.append(int(m.group()))
        if m.group() != p:
            break
    return tuple(parts)


def at_least(version: str, floor: str) -> bool:
    return version_tuple(version) >= version_tuple(floor)


def transformers_version() -> str:
    import transformers

    return transformers.__version__


def molmo2_supported() -> bool:
    return at_least(transformers_version(), MOLMO2_TRANSFORMERS_FLOOR)


def require_molmo2() -> None:
    """Stop with a clear error when the installed transformers cannot run the Molmo2 adapter."""
    found = transformers_version()
    if not at_least(found, MOLMO2_TRANSFORMERS_FLOOR):
        raise UnsupportedVersion(
            f"the Molmo2 adapter (STTS's backbone) needs transformers >= {MOLMO2_TRANSFORMERS_FLOOR}; found "
            f"{found}. Molmo2 first ships in transformers 5.20 and its forward takes the KV cache as "
            f"`cache` from 5.24. Upgrade (pip install 'transformers>={MOLMO2_TRANSFORMERS_FLOOR}'); "
            "the other adapters run from 5.17.")


def check_floors() -> dict[str, str]:
    """{library: version} of torch and transformers, after checking both meet the floors."""
    import torch

    found = {"torch": torch.__version__, "transformers": transformers_version()}
    for lib, floor in (("torch", TORCH_FLOOR), ("transformers", TRANSFORMERS_FLOOR)):
        if not at_least(found[lib], floor):
            raise UnsupportedVersion(f"{lib} {found[lib]} is older than the supported floor {floor}")
    return found
