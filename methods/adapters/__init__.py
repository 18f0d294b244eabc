"""Model adapters on one protocol (:mod:`methods.adapters.base`), one module per model family.
LLaVA-OneVision / LLaVA-Video via HF ``LlavaOnevision*``: :mod:`methods.adapters.llava_onevision`;
Molmo2 (STTS's backbone) via HF ``Molmo2ForConditionalGeneration``: :mod:`methods.adapters.molmo2`;
Qwen2.5-VL via HF ``Qwen2_5_VLForConditionalGeneration``: :mod:`methods.adapters.qwen2_5_vl`.

Public names are imported lazily, so importing a family's tower helpers (``*_encoder``, ``*_tower``,
``vision_prune``) does not import every adapter."""
from __future__ import annotations

_LAZY = {
    "LlavaOnevisionAdapter": "llava_onevision", "SETTINGS": "llava_onevision",
    "Qwen2_5_VLAdapter": "qwen2_5_vl", "Molmo2VideoAdapter": "molmo2",
    "PromptInputs": "base", "Generation": "base", "VideoLLMAdapter": "base", "ByteTokenizer": "text",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
