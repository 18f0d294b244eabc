"""The method registry: one explicit list, ``METHODS``. ``get_method(name, **options)``,
``list_methods()``, ``method_class(name)``, ``describe_methods()``.

A new method is a :class:`methods.base.Method` subclass with a ``name``; add the class to
``METHODS`` below (nothing registers itself on import).
"""
from __future__ import annotations

from typing import Any

from methods.base import Method
from methods.baselines.dycoke import DyCoke
from methods.baselines.fastvid import FastVID
from methods.baselines.inner_llm import FastV, PDrop, Vanilla
from methods.baselines.pre_llm import RandomSubset, UniformPool, VisionZip
from methods.baselines.prunevid import PruneVid
from methods.baselines.tome import ToMe
from methods.holitom import HoliTom, HoliTomWithoutMerge
from methods.stts_method import STTS, STTSEasy, STTSHeuristic, STTSRandom
from methods.tango import Tango

#: papers' methods, then baselines
METHODS: tuple[type[Method], ...] = (
    HoliTom, HoliTomWithoutMerge, Tango, STTS, STTSRandom, STTSHeuristic, STTSEasy,
    Vanilla, FastV, PDrop, VisionZip, RandomSubset, UniformPool, DyCoke, PruneVid, FastVID,
    ToMe,
)


def build_registry(classes) -> dict[str, type[Method]]:
    """name -> class; a non-Method, a nameless class or a duplicate name is an error naming it."""
    out: dict[str, type[Method]] = {}
    for cls in classes:
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise TypeError(f"the method registry needs Method subclasses, got {cls!r}")
        if not cls.name:
            raise TypeError(f"{cls.__name__} has no name")
        if cls.name in out:
            raise ValueError(f"method {cls.name!r} is defined twice: {out[cls.name].__name__}, {cls.__name__}")
        out[cls.name] = cls
    return out


_REGISTRY = build_registry(METHODS)


def list_methods() -> list[str]:
    return sorted(_REGISTRY)


def method_class(name: str) -> type[Method]:
    if name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; registered: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def get_method(name: str, **options: Any) -> Method:
    """An instance of the registered method ``name`` configured with ``options``."""
    return method_class(name)(**options)


def describe_methods() -> dict[str, dict]:
    """name -> {"description", "options": {opt: {type, default, required}}} for every method."""
    out = {}
    for name in list_methods():
        cls = _REGISTRY[name]
        opts = {k: {**v, "default": _jsonable(v["default"])} for k, v in cls.options().items()}
        out[name] = {"description": cls.description, "options": opts}
    return out


def _jsonable(v):
    if isinstance(v, tuple):
        return list(v)
    return v
