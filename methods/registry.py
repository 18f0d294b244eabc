"""Registry of methods: ``register_method(name)``, ``get_method(name, **options)``, ``list_methods()``."""
from __future__ import annotations

import importlib
from typing import Any

from methods.base import Method

_REGISTRY: dict[str, type[Method]] = {}
_LOADED = False


def register_method(name: str):
    """Class decorator: register a :class:`Method` subclass under ``name``."""
    def deco(cls: type[Method]) -> type[Method]:
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise TypeError(f"register_method({name!r}) needs a Method subclass, got {cls!r}")
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"method {name!r} is already registered by {_REGISTRY[name].__name__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls
    return deco


def _ensure_loaded() -> None:
    global _LOADED
    if not _LOADED:
        _LOADED = True
        importlib.import_module("methods.baselines")


def list_methods() -> list[str]:
    _ensure_loaded()
    return sorted(_REGISTRY)


def method_class(name: str) -> type[Method]:
    _ensure_loaded()
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
