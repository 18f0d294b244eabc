"""``apply_method``: attach a method to one model instance, undoably (FrameFusion-style API)::

    with apply_method(adapter, "fastv", k=2, keep=0.5) as h:
        out = h.adapter.run(pixels, "What happens?")
    # or: h = apply_method(adapter, "fastv"); ...; h.remove()

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
    """Attach ``method`` (a name, or a Method) to an adapter (``methods.adapters``).

    An HF model instance is refused: it needs its tokenizer and processor, which
    :func:`methods.load` takes (``methods.load(model, method, processor=processor)``). Bad K /
    retention / option values raise ValueError here."""
    if isinstance(method, str):
        method = get_method(method, **options)
    elif options:
        raise ValueError("options are only accepted with a method name")
    if not isinstance(method, Method):
        raise ValueError(f"method must be a registered name or a Method, got {type(method).__name__}")
    adapter = target
    if isinstance(target, torch.nn.Module):  # an HF model instance: no tokenizer to build prompts with
        raise TypeError(f"apply_method needs an adapter, got the HF model {type(target).__name__}: use "
                        f"methods.load(model, method=..., processor=AutoProcessor.from_pretrained(<dir>)) "
                        f"(or tokenizer=...), which picks the adapter of the model's family")
    if not isinstance(target, VideoLLMAdapter) and not hasattr(target, "num_layers"):
        raise TypeError(f"apply_method needs an adapter (methods.adapters), got {type(target).__name__}")
    plan = method.inner_plan(adapter.num_layers)
    if plan is not None:
        plan.validate(adapter.num_layers)
    return MethodHandle(adapter, method)


#: HF ``model_type`` -> the model family methods declare their support for (an adapter that states
#: its own ``family``, e.g. LLaVA-OV weights in the ``llava-video`` setting, is taken at its word)
FAMILY_OF_MODEL_TYPE = {"llava_onevision": "llava-onevision", "qwen2_5_vl": "qwen2.5-vl", "molmo2": "molmo2"}
FAMILIES = ("llava-onevision", "llava-video", "qwen2.5-vl", "molmo2")


def adapter_family(adapter) -> str:
    """The family of the model an adapter wraps: its own ``family``, else from ``model_type``."""
    return getattr(adapter, "family", None) or FAMILY_OF_MODEL_TYPE[adapter.model.config.model_type]


def method_families(method) -> tuple[str, ...]:
    """The families ``method`` (a registered name, a Method class or instance) runs on: its own
    ``families`` when it declares them, else the adapters' lists of supported methods."""
    from methods.registry import method_class

    cls = method_class(method) if isinstance(method, str) else method if isinstance(method, type) else type(method)
    declared = getattr(cls, "families", None)
    if declared is not None:
        return tuple(declared)
    from methods.adapters.molmo2 import MOLMO2_METHODS
    from methods.adapters.qwen2_5_vl import QWEN2_5_VL_METHODS

    return (("llava-onevision",) + (("qwen2.5-vl",) if cls.name in QWEN2_5_VL_METHODS else ())
            + (("molmo2",) if cls.name in MOLMO2_METHODS else ()))


def check_family(method, family: str) -> None:
    """Raise ValueError unless ``method`` runs on ``family``; the message names the families it
    supports and the methods that run on ``family``."""
    from methods.registry import list_methods

    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; allowed: {', '.join(FAMILIES)}")
    supported = method_families(method)
    if family not in supported:
        name = method if isinstance(method, str) else method.name
        here = [m for m in list_methods() if family in method_families(m)]
        raise ValueError(f"method {name!r} does not run on {family}; it supports: {', '.join(supported)} "
                         f"(methods on {family}: {', '.join(here)})")
