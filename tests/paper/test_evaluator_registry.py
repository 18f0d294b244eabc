"""Every evaluator a claim names (hand-written or generated from a reported table) is registered
by the modules the workflow imports (replicate.evaluators + the EVALUATOR_PLUGINS of the rule files)."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from replicate import evaluators as ev
from replicate.claims import load_claims

REPO = Path(__file__).resolve().parents[2]


def workflow_plugins() -> list[str]:
    """Modules the rule files append to EVALUATOR_PLUGINS (what the verify jobs import)."""
    found = []
    for smk in sorted((REPO / "replicate" / "rules").glob("*.smk")):
        for block in re.findall(r"EVALUATOR_PLUGINS\s*\+=\s*\[([^\]]*)\]", smk.read_text()):
            found += re.findall(r"[\"']([\w.]+)[\"']", block)
    return found


def named_evaluators() -> list[str]:
    return sorted({c["evaluator"] for c in load_claims() if c.get("evaluator")})


def test_paper_plugin_is_listed_by_a_rule_file():
    assert "replicate.paper.evaluators" in workflow_plugins()


@pytest.mark.parametrize("name", named_evaluators())
def test_every_evaluator_named_in_claims_is_registered(name):
    for module in workflow_plugins():
        importlib.import_module(module)
    assert ev.get(name) is not None, f"claims.yaml names evaluator {name!r}, registered by no module"


def test_paper_evaluators_are_paper_tier():
    importlib.import_module("replicate.paper.evaluators")
    from replicate.paper.cells import PAPER_EVALUATORS

    assert {ev.get(n).tier for n in PAPER_EVALUATORS} == {"paper"}


def test_perf_kept_definition_stated_per_paper():
    from replicate.paper.evaluators import PERF_KEPT_DEFINITIONS

    papers = {c["paper"] for c in load_claims() if c.get("evaluator") == "lmms_eval_perf_kept"}
    for paper in papers | {"stts"}:
        d = PERF_KEPT_DEFINITIONS[paper]
        assert d["definition"] and "papers.md" in d["source"]
