"""``jsonschema``, imported without its optional ``rfc3987_syntax`` dependency.

``jupyter`` (through ``jupyter-events``) installs ``jsonschema[format-nongpl]``, and importing
``rfc3987_syntax`` compiles 38 lark grammars: about 9 of the 10 s an ``import jsonschema`` took on
the loaded 2-core build machine (1.3 s without it; measured). The workflow validates its config and
claims while Snakemake parses the rules, so every ``snakemake -n`` and every job paid it. It serves
only jsonschema's ``iri`` / ``iri-reference`` format checks; this project's schemas use no
``format``, so the validators are the same. Later imports of ``rfc3987_syntax`` work as usual.
"""
from __future__ import annotations

import sys

if "jsonschema" not in sys.modules and "rfc3987_syntax" not in sys.modules:
    sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]  # `import` of it raises ImportError
    try:
        import jsonschema
    finally:
        del sys.modules["rfc3987_syntax"]
else:
    import jsonschema

__all__ = ["jsonschema"]
