"""``apply_method``: attach a method to one model instance, undoably (FrameFusion-style API)::

    with apply_method(adapter, "fastv", k=2, keep=0.5) as h:
        out = h.adapter.run(pixels, "What happens?")
    # or: h = apply_method(model, "fastv"); ...; h.remove()

The adapter runs the LLM with its own decoder-layer loop (methods.runtime), so attaching only
sets ``adapter.method``; the HF model object is never modified and other instances are untouched.
"""
from __future__ import annotations

import torch

from methods.adapters.base import VideoLLMAdapter
from methods.base import Method
from methods.registry import get_method


class MethodHandle:
    """Returned by :func:`apply_method`; ``remove()`` (or leaving the ``with`` block) detaches."""

    def __init__(self, adapter, method: Method):
        self.adapter = adapter
        self.method = method
        self._previous = adapter.method
        self._attached = True
        adapter.method = method

    def remove(self) -> None:
        if self._attached:
            if self.adapter.method is not self.method:
                raise RuntimeError("methods must be removed in reverse order of attachment")
            self.adapter.method = self._previous
            self._attached = False

    def __enter__(self) -> "MethodHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def apply_method(target, method, **options) -> MethodHandle:
    """Attach ``method`` (a name, or a Method) to an adapter or an HF LLaVA-OV model instance.

    An HF model is wrapped in a ``LlavaOnevisionAdapter`` (setting ``llava-onevision``); pass an
    adapter to choose the setting. Bad K / retention / option values raise ValueError here."""
    if isinstance(method, str):
        method = get_method(method, **options)
    elif options:
        raise ValueError("options are only accepted with a method name")
    if not isinstance(method, Method):
        raise ValueError(f"method must be a registered name or a Method, got {type(method).__name__}")
    adapter = target
    if isinstance(target, torch.nn.Module):  # an HF model instance
        from methods.adapters import LlavaOnevisionAdapter

        adapter = LlavaOnevisionAdapter(target)
    elif not isinstance(target, VideoLLMAdapter) and not hasattr(target, "num_layers"):
        raise TypeError(f"apply_method needs an adapter (methods.adapters) or an HF model, got "
                        f"{type(target).__name__}")
    plan = method.inner_plan(adapter.num_layers)
    if plan is not None:
        plan.validate(adapter.num_layers)
    return MethodHandle(adapter, method)
