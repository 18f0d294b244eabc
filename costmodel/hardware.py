"""Which ``hardware.yaml`` entry describes a torch device (the CPU entry, or a GPU by its name)."""
from __future__ import annotations

#: substrings of ``torch.cuda.get_device_name`` -> hardware entry, first match wins
CUDA_NAME_TO_ENTRY = (("h200", "h200"), ("h100", "h100-sxm"), ("a800", "a800"), ("a100", "a100-80g"))
CPU_ENTRY = "cpu-2core"


def detect_hardware(device: str) -> str:
    """costmodel hardware entry for ``device``: ``cpu-2core``, or h100-sxm / h200 / a800 / a100-80g
    by the CUDA device name. An unknown GPU is an error naming it (no silent fallback)."""
    if not str(device).startswith("cuda"):
        return CPU_ENTRY
    import torch

    name = torch.cuda.get_device_name(torch.device(device)).lower()
    for key, entry in CUDA_NAME_TO_ENTRY:
        if key in name:
            return entry
    raise ValueError(f"no costmodel hardware entry for CUDA device {name!r}; known: "
                     f"{[k for k, _ in CUDA_NAME_TO_ENTRY]}")
