"""Registered methods: baselines (vanilla, fastv, pdrop, visionzip, random, uniform-pool, dycoke,
prunevid) and the paper methods (holitom, holitom-wo-m, tango, fastvid, stts).

Imported directly, not behind ImportError guards: a method that fails to import is a bug to see,
not a method to drop silently from the registry."""
from . import inner, more, paper, pre_llm, stts_method  # noqa: F401  (importing registers)
