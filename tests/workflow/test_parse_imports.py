"""Parsing the workflow (``snakemake -n`` on the default target) imports no torch: every job of a
cluster run parses the Snakefile again, and ``python -m methods`` / the config check read the
methods' manifest, not their modules. Its wall time is a benchmark, not a test:
``python -m replicate.microbench.snakemake_parse``."""
from __future__ import annotations

from replicate.microbench.snakemake_parse import REPO, parse_once


def test_snakemake_dry_run_imports_no_torch(tmp_path):
    result = parse_once(REPO, tmp_path)
    assert result["torch_imported"] is False


def test_the_check_sees_torch_when_a_rule_file_imports_it(tmp_path):
    """The probe can fail: a Snakefile that imports torch while it is parsed is reported."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "Snakefile").write_text("import torch\n\nrule all:\n    output: 'x'\n    shell: 'touch x'\n")
    work = tmp_path / "work"
    work.mkdir()
    assert parse_once(repo, work)["torch_imported"] is True


def test_the_snakefile_includes_every_rule_file_by_name():
    import re

    included = re.findall(r'^include: "replicate/rules/([a-z_]+\.smk)"$', (REPO / "Snakefile").read_text(), flags=re.M)
    assert included[0] == "common.smk"
    assert sorted(included) == sorted(p.name for p in (REPO / "replicate" / "rules").glob("*.smk"))
