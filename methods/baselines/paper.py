"""Thin registered wrappers around the paper methods (``methods.holitom``, ``methods.tango``).

Imported lazily by ``methods.baselines``: if a paper module is missing, its methods are simply not
registered (the registry keeps working). Stage III / Tango intra-LLM run through methods.runtime.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from methods.base import Method
from methods.registry import register_method
from methods.runtime import MERGES, InnerPlan, InnerStage
from methods.types import Reduction, VideoTokens

from methods.holitom import HoliTomConfig, holitom_reduce  # noqa: E402  (ImportError handled by caller)

_HOLI_FIELDS = [f.name for f in dataclasses.fields(HoliTomConfig)]


@register_method("holitom-wo-m")
class HoliTomWithoutMerge(Method):
    description = "HoliTom stages I+II (temporal DP segmentation + spatial merging), no inner-LLM merge"
    Config = HoliTomConfig
    stages = ("pre_llm",)

    def reduce(self, tokens: VideoTokens) -> Reduction:
        return holitom_reduce(tokens, self.config)

    def nominal_name_and_options(self):
        return "holitom-wo-m", {"retention": float(self.config.retention)}


def _holitom_post_init(self):
    HoliTomConfig(**{n: getattr(self, n) for n in _HOLI_FIELDS})  # validates the pre-LLM part
    if isinstance(self.inner_k, bool) or not isinstance(self.inner_k, int) or self.inner_k < 1:
        raise ValueError(f"inner_k must be an int layer index >= 1, got {self.inner_k!r}")
    if not 0.0 <= float(self.inner_r) < 1.0:
        raise ValueError(f"inner_r (fraction merged away) must be in [0, 1), got {self.inner_r!r}")
    if self.merge not in MERGES:
        raise ValueError(f"merge must be one of {list(MERGES)}, got {self.merge!r}")


HoliTomFullConfig = dataclasses.make_dataclass(
    "HoliTomFullConfig",
    [(f.name, f.type, f) for f in dataclasses.fields(HoliTomConfig)]
    + [("inner_k", "int", dataclasses.field(default=18)),
       ("inner_r", "float", dataclasses.field(default=0.5)),
       ("merge", "str", dataclasses.field(default="running-pairwise"))],
    frozen=True, namespace={"__post_init__": _holitom_post_init,
                            "__doc__": "HoliTomConfig plus Stage III: merge away inner_r of the "
                                       "visual tokens before layer inner_k (HOLITOM_k/HOLITOM_r), "
                                       "merge rule running-pairwise (official) or mean/blend/drop."})


@register_method("holitom")
class HoliTom(Method):
    description = "HoliTom: stages I+II before the LLM, Stage III similarity merge at layer K=18 (R=0.5)"
    Config = HoliTomFullConfig
    stages = ("pre_llm", "inner_llm")

    def pre_config(self) -> HoliTomConfig:
        return HoliTomConfig(**{n: getattr(self.config, n) for n in _HOLI_FIELDS})

    def reduce(self, tokens: VideoTokens) -> Reduction:
        return holitom_reduce(tokens, self.pre_config())

    def inner_plan(self, num_layers) -> Optional[InnerPlan]:
        c = self.config
        return InnerPlan((InnerStage(c.inner_k, 1.0 - float(c.inner_r)),), scoring="last",
                         merge=c.merge).validate(num_layers)

    def nominal_name_and_options(self):
        c = self.config
        return "holitom", {"retention": float(c.retention), "k": c.inner_k, "r": float(c.inner_r)}


try:
    from methods.tango import TangoConfig, tango_reduce
except ImportError:  # pragma: no cover - tango not landed yet
    TangoConfig = None

if TangoConfig is not None:
    @register_method("tango")
    class Tango(Method):
        description = ("Tango: diversity-driven selection + ST-RoPE clustering before the LLM; "
                       "optional intra-LLM blend merge (intra_llm=True, LLaVA-Video)")
        Config = TangoConfig
        stages = ("pre_llm", "inner_llm")

        def reduce(self, tokens: VideoTokens) -> Reduction:
            return tango_reduce(tokens, self.config)

        def inner_plan(self, num_layers) -> Optional[InnerPlan]:
            c = self.config
            if not c.intra_llm:
                return None
            return InnerPlan((InnerStage(c.intra_k, float(c.intra_keep)),), scoring="last",
                             merge="blend", blend_weight=0.6).validate(num_layers)

        def nominal_name_and_options(self):
            c = self.config
            if c.intra_llm:
                return "tango-intra", {"retention": float(c.retention), "k": c.intra_k, "p": float(c.intra_keep)}
            return "tango", {"retention": float(c.retention)}


try:
    from methods.fastvid import FastVIDConfig, fastvid_reduce
except ImportError:  # pragma: no cover - fastvid not landed
    FastVIDConfig = None

if FastVIDConfig is not None:
    @register_method("fastvid")
    class FastVID(Method):
        description = "FastVID: DySeg on global features + STPrune (MAP-head salient + density merging)"
        Config = FastVIDConfig
        stages = ("pre_llm",)

        def reduce(self, tokens: VideoTokens) -> Reduction:
            return fastvid_reduce(tokens, self.config)

        def nominal_name_and_options(self):
            return "fastvid", {"retention": float(self.config.retention)}
