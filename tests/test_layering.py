"""Dependencies point one way, checked on the source with ``ast`` (every import statement counts,
function-level ones included; importing ``a.b.c`` counts as importing the packages ``a`` and ``a.b``
too, whose ``__init__`` runs first):

- no import cycle among the modules of methods/, costmodel/, replicate/ and figures/;
- costmodel imports nothing from methods or replicate (its command line, ``costmodel/__main__.py``,
  is a front end over both packages and imports ``methods.nominal`` inside the function that builds
  a method's schedule, so ``python -m costmodel archs`` stays light);
- methods imports nothing from replicate or figures; figures nothing from replicate;
- no method module imports an adapter (``methods.adapters`` and its family modules): a method
  declares the families it runs on and what it needs from an adapter as a protocol
  (``Method.families`` / ``Method.needs``); in-ViT methods call the families' tower helpers.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("methods", "costmodel", "replicate", "figures")
#: package -> packages it must not import
FORBIDDEN = {"costmodel": ("methods", "replicate"), "methods": ("replicate", "figures"), "figures": ("replicate",)}
#: command-line front ends allowed to import one layer up, inside a function
FRONT_ENDS = {"costmodel.__main__": ("methods.nominal",)}
#: the adapter modules no method may import (the families' tower helpers, ``*_encoder``, ``*_tower``
#: and ``vision_prune``, are functions over the adapter protocol and may be)
ADAPTER_MODULES = ("methods.adapters.llava_onevision", "methods.adapters.qwen2_5_vl", "methods.adapters.molmo2",
                   "methods.adapters.base")
METHOD_MODULES = ("methods.holitom", "methods.tango", "methods.stts", "methods.stts_method", "methods.base",
                  "methods.registry", "methods.setting", "methods.nominal", "methods.baselines")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for f in sorted((REPO / pkg).rglob("*.py")):
            parts = list(f.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = f
    return out


def _imported_names(module: str, path: Path) -> list[tuple[str, int]]:
    """(absolute dotted name, line) of every import in ``path``, relative ones resolved."""
    out = []
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module
            out.append((prefix, node.lineno))
            out += [(f"{prefix}.{a.name}", node.lineno) for a in node.names]
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> project modules it imports (and their parent packages, except its own ancestors)."""
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in mods.items():
        deps = set()
        for name, _ in _imported_names(module, path):
            while name and name not in mods:
                name = name.rpartition(".")[0]
            if not name or name == module:
                continue
            deps.add(name)
            parts = name.split(".")
            for i in range(1, len(parts)):
                parent = ".".join(parts[:i])
                if parent in mods and not (module == parent or module.startswith(parent + ".")):
                    deps.add(parent)
        graph[module] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        comp.append(m)
                        if m == node:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_with_or_without_function_level_imports():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layering(package):
    mods = _modules()
    bad = []
    for module, path in mods.items():
        if module.split(".")[0] != package:
            continue
        allowed = FRONT_ENDS.get(module, ())
        for name, line in _imported_names(module, path):
            top = name.split(".")[0]
            if top in FORBIDDEN[package] and not any(name == a or name.startswith(a + ".") for a in allowed):
                bad.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    assert not bad, "\n".join(sorted(set(bad)))


def test_front_ends_import_the_layer_above_only_inside_a_function():
    """``costmodel/__main__.py`` may read methods' schedules, never at module level."""
    for module, allowed in FRONT_ENDS.items():
        tree = ast.parse(_modules()[module].read_text())
        top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        names = [a.name for n in top_level for a in n.names] + [n.module or "" for n in top_level
                                                                 if isinstance(n, ast.ImportFrom)]
        assert not any(x.startswith(a) for x in names for a in allowed), f"{module} imports {allowed} at module level"


def test_no_method_imports_an_adapter():
    from methods.adapters import _LAZY as ADAPTER_PACKAGE_NAMES  # what the package exports: the adapters

    mods = _modules()
    bad = []
    for module, path in mods.items():
        if not any(module == m or module.startswith(m + ".") for m in METHOD_MODULES):
            continue
        for name, line in _imported_names(module, path):
            exported = name.startswith("methods.adapters.") and name.rpartition(".")[2] in ADAPTER_PACKAGE_NAMES
            if exported or any(name == a or name.startswith(a + ".") for a in ADAPTER_MODULES):
                bad.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    assert not bad, "\n".join(bad)


def test_costmodel_archs_imports_no_method_and_no_torch():
    import subprocess
    import sys

    code = ("import sys; from costmodel.__main__ import main; main(['archs']); "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('methods', 'torch', 'replicate')); "
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "llava-onevision-7b" in proc.stdout
