"""``apply_method``: attach a method to one model instance, undoably (FrameFusion-style API)::

    with apply_method(adapter, "fastv", k=2, keep=0.5) as h:
        out = h.adapter.run(pixels, "What happens?")
    # or: h = apply_method(adapter, "fastv"); ...; h.remove()

The adapter runs the LLM with its own decoder-layer loop (methods.runtime), so attaching only
sets ``adapter.method``; the HF model object is never modified and other instances are untouched.
Attaching checks that the method runs on the adapter's family (``Method.families``) and that the
adapter offers what the method needs (``Method.needs``): the error names the supported families.
An HF model is loaded with its tokenizer and processor by :func:`methods.load`, not here.
"""
from __future__ import annotations

from methods.base import Method, MethodHandle
from methods.registry import get_method, list_methods, method_info
from methods.types import FAMILIES

__all__ = ["apply_method", "MethodHandle", "adapter_family", "check_family", "method_families"]

#: HF ``model_type`` -> the model family methods declare their support for (an adapter that states
#: its own ``family``, e.g. LLaVA-OV weights in the ``llava-video`` setting, is taken at its word)
FAMILY_OF_MODEL_TYPE = {"llava_onevision": "llava-onevision", "qwen2_5_vl": "qwen2.5-vl", "molmo2": "molmo2"}


def apply_method(target, method, **options) -> MethodHandle:
    """Attach ``method`` (a name, or a Method) to an adapter (``methods.adapters``).

    An HF model instance is refused: it needs its tokenizer and processor, which
    :func:`methods.load` takes (``methods.load(model, method, processor=processor)``). Bad K /
    retention / option values, and a method that does not run on the adapter's family, raise
    ValueError here."""
    if isinstance(method, str):
        method = get_method(method, **options)
    elif options:
        raise ValueError("options are only accepted with a method name")
    if not isinstance(method, Method):
        raise ValueError(f"method must be a registered name or a Method, got {type(method).__name__}")
    if _is_hf_model(target):  # no tokenizer to build prompts with
        raise TypeError(f"apply_method needs an adapter, got the HF model {type(target).__name__}: use "
                        f"methods.load(model, method=..., processor=AutoProcessor.from_pretrained(<dir>)) "
                        f"(or tokenizer=...), which picks the adapter of the model's family")
    if not hasattr(target, "num_layers") or not hasattr(target, "method"):
        raise TypeError(f"apply_method needs an adapter (methods.adapters), got {type(target).__name__}")
    return method.attach(target)


def _is_hf_model(target) -> bool:
    import torch

    return isinstance(target, torch.nn.Module)


def adapter_family(adapter) -> str:
    """The family of the model an adapter wraps: its own ``family``, else from ``model_type``."""
    return getattr(adapter, "family", None) or FAMILY_OF_MODEL_TYPE[adapter.model.config.model_type]


def method_families(method) -> tuple[str, ...]:
    """The families ``method`` (a registered name, a Method class or instance) runs on (its
    ``families``; for a name, read from the manifest without importing the method)."""
    if isinstance(method, str):
        return tuple(method_info(method)["families"])
    cls = method if isinstance(method, type) else type(method)
    return tuple(cls.families)


def check_family(method, family: str) -> None:
    """Raise ValueError unless ``method`` runs on ``family``, before anything is attached; the
    message names the families it supports and the methods that run on ``family``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; allowed: {', '.join(FAMILIES)}")
    supported = method_families(method)
    if family not in supported:
        name = method if isinstance(method, str) else method.name
        here = [m for m in list_methods() if family in method_families(m)]
        raise ValueError(f"method {name!r} does not run on {family}; it supports: {', '.join(supported)} "
                         f"(methods on {family}: {', '.join(here)})")
