# Replication workflow for Tango, STTS and HoliTom: every claim -> results/claims/<id>.json.
#
#   snakemake --cores all                          everything this machine can do (default target `all`)
#   snakemake results/claims/<claim-id>.json       verify one claim
#   snakemake figures                              tables and figures only
#   snakemake --profile profiles/{smoke,gpu,slurm} smallest run / GPU box / cluster
#
# Layout (snakemake-workflows convention): config + schemas + claims in replicate/, rule files in
# replicate/rules/*.smk (each included below by name; a new tier is a new file there and a new
# include line, tests/workflow/test_parse_imports.py checks none is left out), thin scripts in
# replicate/scripts/ calling the replicate and figures packages.
import os
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

REPO = Path(workflow.basedir)
if str(REPO) not in sys.path:  # the packages are installed editable; this covers a bare checkout
    sys.path.insert(0, str(REPO))

configfile: str(REPO / "replicate" / "config.yaml")

from replicate.configuration import prepare_config

# profiles layer under --configfile; --config strings coerced by the schema's types; the schema's
# defaults filled; the bad key named (schema, NaN/inf, context length, each method's own options)
prepare_config(config, overwrite=workflow.config_settings.overwrite_config, argv=sys.argv, repo=REPO,
               cli_configfiles=workflow.config_settings.configfiles)

from replicate import evaluators as EVALUATORS
from replicate import tiers as TIERS
from replicate.claims import ANALOGUE_HEADLINE_IDS, CLAIMS_FILE, HEADLINE_IDS, REPORTED_DIR, load_claims
from replicate.provenance import config_hash

CLAIMS = load_claims(CLAIMS_FILE)
CLAIM_IDS = [c["id"] for c in CLAIMS]
CLAIMS_BY_ID = {c["id"]: c for c in CLAIMS}
REPORTED_CSVS = sorted(str(p) for p in REPORTED_DIR.glob("*.csv"))
CONFIG_HASH = config_hash(config)
PYTHON = sys.executable
# Extension points for rule files of new tiers (e.g. replicate/rules/cpu.smk):
#   TIER_RESULTS[tier] += [result files its evaluators read]   (inputs of the verify rules)
#   TIER_TARGETS[tier] += [tables, figures, ... `all` builds]   (only where the tier can run)
TIER_RESULTS = {tier: [] for tier in TIERS.TIERS}
TIER_TARGETS = {tier: [] for tier in TIERS.TIERS}


onstart:
    print(f"replicate: {len(CLAIM_IDS)} claims; tiers: "
          + ", ".join(f"{t}={'yes' if s['runnable'] else 'no'}" for t, s in TIERS.summary(config).items()))


onsuccess:
    from replicate.run_summary import success_lines

    print("\n".join(success_lines(".", HEADLINE_IDS, log)))


onerror:
    from replicate.run_summary import error_lines

    print("\n".join(error_lines(".", log, config)))


rule all:
    default_target: True
    input:
        "results/claims/REPORT.md",
        "results/claims/summary.json",
        "results/claims/README_table.md",
        "results/analytic/exact_vs_paper.md",
        "results/tables/holitom_flops.md",
        "results/figures/flops_vs_retention.png",
        "results/figures/notebook/holitom_flops.md",
        lambda wc: runnable_targets(TIER_TARGETS),


# common.smk first (shared constants, wildcard constraints, helpers); the others in any order
include: "replicate/rules/common.smk"
include: "replicate/rules/analytic.smk"
include: "replicate/rules/bench.smk"
include: "replicate/rules/claims.smk"
include: "replicate/rules/claims_unknown.smk"
include: "replicate/rules/cpu.smk"
include: "replicate/rules/figures.smk"
include: "replicate/rules/gpu.smk"
include: "replicate/rules/holitom.smk"
include: "replicate/rules/paper.smk"
include: "replicate/rules/stts.smk"
include: "replicate/rules/tango.smk"

# Finished results survive an interrupted or failed job (outputs under results/ flagged `update`,
# restored with their mtime and digest), and the claim files are checked against their digests
# before anything runs: replicate/workflow_guard.py.
from replicate.workflow_guard import protect_results

protect_results(workflow)
