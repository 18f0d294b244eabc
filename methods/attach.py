"""``apply_method``: attach a method to one model instance, undoably (FrameFusion-style API)::

    with apply_method(adapter, "fastv", k=2, keep=0.5) as h:
        out = h.adapter.run(pixels, "What happens?")
    # or: h = apply_method(model, "fastv"); ...; h.remove()

The adapter runs the LLM with its own decoder-layer loop (methods.runtime), so attaching only
sets ``adapter.method``; the HF model object is never modified and other instances are untouched.
Attaching checks that the method runs on the adapter's family (``Method.families``) and that the
adapter offers what the method needs (``Method.needs``): the error names the supported families.
"""
from __future__ import annotations

from methods.base import Method, MethodHandle
from methods.registry import get_method

__all__ = ["apply_method", "MethodHandle"]


def apply_method(target, method, **options) -> MethodHandle:
    """Attach ``method`` (a name, or a Method) to an adapter or an HF LLaVA-OV model instance.

    An HF model is wrapped in a ``LlavaOnevisionAdapter`` (setting ``llava-onevision``); pass an
    adapter to choose the setting. Bad K / retention / option values, and a method that does not
    run on the adapter's family, raise ValueError here."""
    if isinstance(method, str):
        method = get_method(method, **options)
    elif options:
        raise ValueError("options are only accepted with a method name")
    if not isinstance(method, Method):
        raise ValueError(f"method must be a registered name or a Method, got {type(method).__name__}")
    adapter = target
    if _is_hf_model(target):
        from methods.adapters.llava_onevision import LlavaOnevisionAdapter

        adapter = LlavaOnevisionAdapter(target)
    elif not hasattr(target, "num_layers") or not hasattr(target, "method"):
        raise TypeError(f"apply_method needs an adapter (methods.adapters) or an HF model, got "
                        f"{type(target).__name__}")
    return method.attach(adapter)


def _is_hf_model(target) -> bool:
    import torch

    return isinstance(target, torch.nn.Module)
