"""Registered baselines (vanilla, fastv, pdrop, visionzip, random, uniform-pool) and thin wrappers
of the paper methods (holitom, holitom-wo-m, tango), the latter imported only if their modules exist."""
from . import inner, pre_llm  # noqa: F401  (registers)

try:
    from . import paper  # noqa: F401
except ImportError as exc:  # pragma: no cover - paper modules not landed yet
    PAPER_IMPORT_ERROR = exc
else:
    PAPER_IMPORT_ERROR = None
