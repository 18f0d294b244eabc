"""The evaluator registry (replicate.evaluators.LISTED) against the claims: every evaluator a claim
names (hand-written or generated from a reported table) is listed, and every listed evaluator is
named by some claim or documented as spare."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from replicate import evaluators as ev
from replicate.claims import load_claims

REPO = Path(__file__).resolve().parents[2]


def named_evaluators() -> list[str]:
    return sorted({c["evaluator"] for c in load_claims() if c.get("evaluator")})


@pytest.mark.parametrize("name", named_evaluators())
def test_every_evaluator_named_in_claims_is_listed(name):
    assert ev.get(name) is not None, f"claims.yaml names evaluator {name!r}, listed nowhere in replicate.evaluators"


def test_every_listed_evaluator_is_named_by_a_claim_or_documented_as_spare():
    listed = {e.name for e in ev.LISTED}
    unused = listed - set(named_evaluators())
    assert unused == set(ev.SPARE), (f"listed but named by no claim and not in SPARE: {sorted(unused - set(ev.SPARE))}; "
                                     f"in SPARE but named by a claim or not listed: {sorted(set(ev.SPARE) - unused)}")
    assert all(len(reason) > 40 for reason in ev.SPARE.values())


def test_no_rule_file_extends_the_registry():
    """The list is the registry: no rule file appends evaluator modules by name."""
    for smk in [REPO / "Snakefile", *sorted((REPO / "replicate" / "rules").glob("*.smk"))]:
        assert "EVALUATOR_PLUGINS" not in smk.read_text(), smk.name


def test_registry_imports_no_torch():
    """The Snakefile imports the registry while parsing; torch would cost seconds per start-up."""
    code = "import sys, replicate.evaluators; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "False"


def test_paper_evaluators_are_paper_tier():
    from replicate.paper.cells import PAPER_EVALUATORS

    assert {ev.get(n).tier for n in PAPER_EVALUATORS} == {"paper"}


def test_perf_kept_definition_stated_per_paper():
    from replicate.paper.evaluators import PERF_KEPT_DEFINITIONS

    papers = {c["paper"] for c in load_claims() if c.get("evaluator") == "lmms_eval_perf_kept"}
    for paper in papers | {"stts"}:
        d = PERF_KEPT_DEFINITIONS[paper]
        assert d["definition"] and "docs/sources.md" in d["source"]
