"""Every tier derives a method's options from one function, ``Method.from_setting``.

Swept: every (method, setting) the claims name (every paper-tier cell, every analytic row and
prediction) and the configs name (the cpu and efficiency grids of the schema's defaults and of the
smoke profile). For each, the tier's own code path is run (with a stand-in adapter that has the
model's depths, grid and newline layout) and compared:

- run tiers on the paper model: the paper tier's shard, its cost estimate and the efficiency
  harness build the same Method (Tango's ``"auto"`` sinks read as the list of its grid and layout);
- the paper-level options a cell records are the same whatever model it runs on (the paper
  model, a tiny rehearsal model, the cpu tier's models): only the applied layer indices scale;
- priced tiers (the analytic rows, latency predictions and planning) give the nominal schedule the
  run tiers give, except where the priced setting is documented to differ
  (``PaperSetting.priced``: PruneVid's stage 4, a PDrop retention; analytic rows leave out the
  layout's options, which they name as variants).
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from costmodel.arch import load_arch
from methods.registry import method_class
from methods.setting import PaperSetting
from methods.tango import setting_sinks
from replicate import analytic as A
from replicate import planning
from replicate.claims import load_claims
from replicate.configuration import load_config
from replicate.harness.accuracy import cell_method
from replicate.harness import bench_models
from replicate.harness.efficiency import EfficiencyCell
from replicate.paper import cells as PC
from replicate.paper import cost, shard

REPO = Path(__file__).resolve().parents[2]
CLAIMS = load_claims()
CONFIGS = {"default": load_config(),
           "smoke": load_config(overrides=__import__("yaml").safe_load((REPO / "profiles/smoke/smoke.yaml").read_text()))}


def adapter_of(arch=None, *, layers=None, vision=None, newline=None, grid=None):
    """A stand-in with what the tiers read from an adapter (depths, layout, grid)."""
    if arch is not None:
        layers, vision, newline, grid = arch.llm.layers, arch.vision.layers, arch.newline, tuple(arch.pooled_grid)
    return SimpleNamespace(num_layers=layers, vision_layers=vision, newline_policy=newline, grid=grid,
                           family="llava-video" if newline == "grid" else "llava-onevision")


def fields(method) -> dict:
    import dataclasses

    c = method.config
    out = {f.name: getattr(c, f.name) for f in dataclasses.fields(c)}
    if out.get("sink_indices") == "auto":
        out["sink_indices"] = None  # compared after resolving, below
    return out


def resolved(method, arch) -> dict:
    out = fields(method)
    if "sink_indices" in out:
        sinks = out["sink_indices"]
        out["sink_indices"] = tuple(setting_sinks(tuple(arch.pooled_grid), arch.newline) if sinks is None else sinks)
    return out


PAPER_CELLS = sorted({c for claim in PC.selected_claims(CLAIMS, CONFIGS["default"])
                      for c in PC.claim_cells(claim, CONFIGS["default"]) if c.method != "vanilla"},
                     key=lambda c: c.dir)


def test_the_sweep_covers_every_method_the_claims_name():
    named = {c.method for c in PAPER_CELLS}
    assert named >= {"holitom", "holitom-wo-m", "tango", "fastv", "pdrop", "visionzip", "prunevid", "fastvid",
                     "dycoke", "stts", "tome", "random"}
    assert len(PAPER_CELLS) > 150


@pytest.mark.parametrize("cell", PAPER_CELLS, ids=lambda c: c.dir.split("cells/")[1])
def test_run_tiers_build_one_method_for_a_paper_cell(cell):
    arch = load_arch(cell.model)
    shard_method, record = shard.build_method(cell, adapter_of(arch), cell.model)
    by_cost = cost.cell_method(cell)
    direct = method_class(cell.method).from_setting(PaperSetting.for_arch(
        arch, cell.retention, cell.method_options, newline=arch.newline, grid=tuple(arch.pooled_grid)))
    assert record["applied"] == direct.applied and record["paper"] == direct.paper
    assert resolved(shard_method, arch) == resolved(by_cost, arch)
    if cell.method not in ("stts", "tome") and cell.model in bench_models.ARCHS:  # what the gpu harness times
        timed = EfficiencyCell(adapter_of(arch), cell.method, cell.retention, cell.method_options).m
        assert resolved(timed, arch) == resolved(by_cost, arch)
    # a tiny rehearsal model: the same paper-level options, the layer indices scaled
    _, tiny = shard.build_method(cell, adapter_of(layers=3, vision=2, newline=arch.newline, grid=(3, 3)), cell.model)
    assert {k: v for k, v in tiny["paper"].items() if k != "sink_indices"} == \
        {k: v for k, v in record["paper"].items() if k != "sink_indices"}
    assert set(tiny["scaled"]) <= set(tiny["paper"])


def _priced_differs(cell) -> bool:
    """Documented differences of a priced setting (PaperSetting.priced)."""
    if cell.method == "prunevid":
        return True  # the papers' tables count its pre-LLM stages
    if cell.method == "pdrop" and cell.retention is not None:
        return True  # no retention is mapped onto lam
    return False


@pytest.mark.parametrize("claim", [c for c in CLAIMS if c.get("tier") == "paper"
                                   and c["setting"].get("method", "vanilla") != "vanilla"
                                   and c.get("evaluator") in PC.PAPER_EVALUATORS],
                         ids=lambda c: c["id"])
def test_priced_tiers_give_the_run_tiers_schedule(claim):
    """Planning (priced, with the model's layout) and the paper tier's cost estimate (run) plan the
    same tokens for a claim's cells, apart from the documented priced differences."""
    cells = PC.method_cells(claim, CONFIGS["default"])
    if not cells:
        pytest.skip("no loader for the claim's benchmark")
    cell = cells[0]
    planned, _ = planning.plan_cells([claim])
    setting = next(p.setting for p in planned if p.setting.method == cell.method)
    run = cost.cell_schedule(cell, 16)[1].llm_visual
    if setting.retention is None and method_class(cell.method).retention_kind == "required":
        # the claim states none (HoliTom's frames sweep): the paper tier assumes the config's
        # holitom.frames_retention, planning has no config and lists the setting as not estimated
        with pytest.raises(ValueError, match="needs a retention"):
            A.schedule_for(setting)
        return
    if cell.method == "pdrop" and cell.retention is not None:
        with pytest.raises(ValueError, match="pdrop takes no retention in a priced setting"):
            A.schedule_for(setting)
        return
    priced = A.schedule_for(setting, "global_round")[1].llm_visual  # the run tiers' budget rounding
    if cell.method == "prunevid":  # priced: its pre-LLM stages only (HoliTom's FLOPs column)
        assert priced[0] == run[0] and priced != run and set(priced) == {run[0]}
        return
    assert priced == run


def _analytic_rows():
    from replicate import holitom_tables, tango_tables

    rows = []
    for config in CONFIGS.values():
        rows += A.grid_settings(config["analytic"]["grid"])
        rows += [s for _, s in holitom_tables.analytic_settings(holitom_tables.settings(config))]
    rows += A.claim_settings(CLAIMS)
    rows += [A.Setting(m, meth, load_arch(m).default_frames, float(r), o)
             for m, meth, o in tango_tables.VARIANTS for r in tango_tables.RETENTIONS]
    return A.unique(rows)


@pytest.mark.parametrize("row", _analytic_rows(), ids=lambda s: s.key)
def test_an_analytic_row_is_the_method_from_setting_priced(row):
    from methods.registry import resolve

    arch = A.arch_of(row.model)
    name, fixed = resolve(row.method)
    direct = method_class(name).from_setting(PaperSetting.for_arch(
        arch, row.retention, {**fixed, **A.method_options(row)}, priced=True)).build()
    assert fields(A.method_of(row)) == fields(direct)
    run = method_class(name).from_setting(PaperSetting.for_arch(arch, row.retention, {**fixed, **A.method_options(row)}))
    if name not in ("prunevid", "pdrop"):  # the documented priced differences
        assert fields(run.build()) == fields(direct)


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_cpu_tier_cells_record_the_paper_level_options_of_the_paper_tier(config):
    """Each cpu-grid cell (tiny models: 3 LLM layers, a 2-block tower; both layouts) records the
    options from_setting gives, and at the paper level they are those of the paper model."""
    cfg = CONFIGS[config]["cpu"]
    grids = [("one_token", cfg["methods"], cfg["retentions"]), ("grid", cfg["video"]["methods"], cfg["video"]["retentions"])]
    checked = 0
    for newline, methods, retentions in grids:
        for m in methods:
            for r in ([None] if m == "vanilla" else retentions):
                tiny = adapter_of(layers=3, vision=2, newline=newline, grid=(3, 3))
                record, built = cell_method(tiny, m, r, cfg["options"].get(m, {}))
                direct = method_class(m).from_setting(PaperSetting(r, cfg["options"].get(m, {}), llm_layers=3,
                                                                   vision_layers=2, newline=newline))
                assert {k: v for k, v in record.items() if k != "label"} == direct.record()
                assert fields(built) == fields(direct.build())
                full = method_class(m).from_setting(PaperSetting(r, cfg["options"].get(m, {}), newline=newline))
                assert record["paper"] == full.paper
                checked += 1
    assert checked >= 5
