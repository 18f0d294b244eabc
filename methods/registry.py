"""The method registry: one explicit list, ``METHODS`` (name -> ``"module:Class"``), read without
importing any method (as lmms-eval's ``models/registry_v2`` manifests do).

``get_method(name, **options)`` and ``method_class(name)`` import the one class they need.
``list_methods()``, ``describe_methods()`` and ``method_info(name)`` (options and defaults,
families, stages, retention kind, the papers' notation) read ``methods/manifest.json``, the light
metadata every Method class states about itself, so listing methods (``python -m methods``), the
config check and the workflow's parsing import no torch. The manifest is derived from the classes
(``python -m methods --write-manifest``); ``tests/methods/test_registry.py`` holds it equal to them.

A new method is a :class:`methods.base.Method` subclass with a ``name``: add its entry to
``METHODS`` below and rewrite the manifest (nothing registers itself on import).
"""
from __future__ import annotations

import importlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

#: papers' methods, then baselines
METHODS: dict[str, str] = {
    "holitom": "methods.holitom:HoliTom",
    "holitom-wo-m": "methods.holitom:HoliTomWithoutMerge",
    "tango": "methods.tango:Tango",
    "stts": "methods.stts_method:STTS",
    "stts-random": "methods.stts_method:STTSRandom",
    "stts-heuristic": "methods.stts_method:STTSHeuristic",
    "stts-easy": "methods.stts_method:STTSEasy",
    "vanilla": "methods.baselines.inner_llm:Vanilla",
    "fastv": "methods.baselines.inner_llm:FastV",
    "pdrop": "methods.baselines.inner_llm:PDrop",
    "visionzip": "methods.baselines.pre_llm:VisionZip",
    "random": "methods.baselines.pre_llm:RandomSubset",
    "uniform-pool": "methods.baselines.pre_llm:UniformPool",
    "dycoke": "methods.baselines.dycoke:DyCoke",
    "prunevid": "methods.baselines.prunevid:PruneVid",
    "fastvid": "methods.baselines.fastvid:FastVID",
    "tome": "methods.baselines.tome:ToMe",
}
MANIFEST = Path(__file__).with_name("manifest.json")
#: the method that prunes nothing
UNPRUNED = "vanilla"


def list_methods() -> list[str]:
    return sorted(METHODS)


def _unknown(name: str) -> ValueError:
    return ValueError(f"unknown method {name!r}; registered: {', '.join(sorted(METHODS))}")


@lru_cache(maxsize=None)
def method_class(name: str) -> type:
    """The Method class registered as ``name`` (imported on first use)."""
    if name not in METHODS:
        raise _unknown(name)
    module, _, attr = METHODS[name].partition(":")
    cls = getattr(importlib.import_module(module), attr)
    check_entry(name, cls)
    return cls


def check_entry(name: str, cls: Any) -> None:
    """A registry entry must be a Method subclass carrying that name (the error names the entry)."""
    from methods.base import Method

    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise TypeError(f"the method registry needs Method subclasses, got {cls!r} for {name!r}")
    if cls.name != name:
        raise TypeError(f"registry entry {name!r} points at {cls.__name__}, whose name is {cls.name!r}")


def get_method(name: str, **options: Any):
    """An instance of the registered method ``name`` configured with ``options``."""
    return method_class(name)(**options)


def method_classes() -> list[type]:
    """Every registered class, in ``METHODS`` order (imports them all)."""
    return [method_class(name) for name in METHODS]


# ---- light metadata: the manifest (no method imported) ------------------------------------------
@lru_cache(maxsize=1)
def manifest() -> dict[str, Any]:
    data = json.loads(MANIFEST.read_text())
    if sorted(data["methods"]) != sorted(METHODS):
        raise RuntimeError(f"{MANIFEST} lists {sorted(data['methods'])}, the registry {sorted(METHODS)}: "
                           f"rewrite it with `python -m methods --write-manifest`")
    return data


def method_info(name: str) -> dict[str, Any]:
    """The manifest entry of ``name``: class, description, families, stages, retention_kind,
    notation, schedule_options, nominal (has a nominal schedule) and options."""
    if name not in METHODS:
        raise _unknown(name)
    return manifest()["methods"][name]


def describe_methods() -> dict[str, dict]:
    """name -> {"description", "families", "budget", "options": {opt: {type, default, required}}} for
    every method (``budget``: the cost model rounds its retention to whole tokens, per frame or over
    the video: ``python -m costmodel ... --budget``)."""
    return {name: {"description": info["description"], "families": list(info["families"]),
                   "budget": info["budget"], "options": info["options"]}
            for name, info in sorted(manifest()["methods"].items())}


def takes_retention(name: str) -> bool:
    """Whether ``name`` is run at a retention (every method but those that prune nothing)."""
    return method_info(name)["retention_kind"] != "none"


def variants() -> dict[str, dict[str, Any]]:
    """Names the papers' tables give a configuration of a registered method: name -> {"of": method,
    "options": the options it fixes, "notation": its symbols} (Tango's ``tango-intra``: its
    intra-LLM stage on)."""
    return manifest()["variants"]


def nominal_names() -> tuple[str, ...]:
    """Every name with a nominal schedule: registered methods that state one, then the variants."""
    data = manifest()
    return tuple(n for n in METHODS if data["methods"][n]["nominal"]) + tuple(data["variants"])


def resolve(name: str) -> tuple[str, dict[str, Any]]:
    """(registered method, the options a variant name fixes) of a method or variant name."""
    if name in METHODS:
        return name, {}
    found = variants().get(name)
    if found is None:
        raise ValueError(f"unknown method {name!r}; allowed: {', '.join(nominal_names())}")
    return found["of"], dict(found["options"])


def notation(name: str) -> dict[str, str]:
    """The papers' symbols in claim settings -> option names, for a method or variant name."""
    if name in METHODS:
        return dict(method_info(name)["notation"])
    resolve(name)  # names the allowed ones
    return dict(variants()[name]["notation"])


# ---- building the manifest from the classes ------------------------------------------------------
def _jsonable(v):
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    return v


def class_info(cls) -> dict[str, Any]:
    """The manifest entry a Method class states about itself."""
    from methods.base import Method

    options = {k: {**v, "default": _jsonable(v["default"])} for k, v in cls.options().items()}
    return {"class": f"{cls.__module__}:{cls.__qualname__}", "description": cls.description,
            "families": list(cls.families), "stages": list(cls.stages), "retention_kind": cls.retention_kind,
            "notation": dict(cls.notation), "schedule_options": list(cls.schedule_options),
            "nominal": cls.nominal_tokens is not Method.nominal_tokens or cls.nominal_schedule is not Method.nominal_schedule,
            "budget": _budget(cls), "options": options}


def _budget(cls) -> bool:
    """Whether the nominal schedule keeps a whole-token budget from the retention by default (a
    property, like VisionZip's, depends on the config: its default config has one)."""
    return isinstance(cls.pre_llm_budget, property) or bool(cls.pre_llm_budget)


def build_manifest() -> dict[str, Any]:
    """The manifest of the registered classes (imports every method)."""
    classes = method_classes()
    out = {"methods": {c.name: class_info(c) for c in classes}, "variants": {}}
    for cls in classes:
        for vname, v in cls.variants.items():
            if vname in METHODS or vname in out["variants"]:
                raise ValueError(f"variant name {vname!r} of {cls.name!r} is already taken")
            out["variants"][vname] = {"of": cls.name, "options": {k: _jsonable(x) for k, x in v["options"].items()},
                                      "notation": dict(v.get("notation", {}))}
    return out


def write_manifest(path: Path = MANIFEST) -> Path:
    path.write_text(json.dumps(build_manifest(), indent=1) + "\n")
    manifest.cache_clear()
    return path
