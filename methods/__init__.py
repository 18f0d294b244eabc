"""Shared method implementations: pure tensor algorithms, the paper methods and baselines, and model
adapters/runtime for HF transformers.

A model with a method, in two lines (instance-scoped, undoable; ``methods.api``)::

    import methods
    model = methods.load("/ckpt/llava-onevision-qwen2-7b-ov-hf", method="holitom", retention=0.10)
    answers = model.generate(["clip.mp4"], ["What happens in the video?"], max_new_tokens=32)

On an adapter (``methods.adapters``) directly::

    from methods import apply_method
    with apply_method(adapter, "fastv", k=2, keep=0.5) as h:
        out = h.adapter.run(pixel_values, "What happens in the video?")

Public names are imported lazily so ``import methods.types`` stays light.
"""
from __future__ import annotations

_LAZY = {
    "Method": "methods.base", "MethodHandle": "methods.attach", "apply_method": "methods.attach",
    "METHODS": "methods.registry", "get_method": "methods.registry", "run": "methods.pipeline",
    "nominal_schedule": "methods.nominal",
    "list_methods": "methods.registry", "describe_methods": "methods.registry",
    "VideoTokens": "methods.types", "Reduction": "methods.types", "check_retention": "methods.types",
    "LlavaOnevisionAdapter": "methods.adapters",
    "load": "methods.api", "PrunedVideoLLM": "methods.api", "Answer": "methods.api",
    "GenerationConfig": "methods.generation",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'methods' has no attribute {name!r}")
