"""The claim registry: load, validate and expand ``replicate/claims.yaml``.

Headline claims are written by hand in ``claims:``; table and figure cells are generated from the
reported CSVs in ``replicate/reported/`` (the single source of truth for cells) by the generators
listed in ``tables:``. Every claim, hand-written or generated, is validated against the schema's
``$defs/claim`` and ids must be unique.
"""
from __future__ import annotations

import copy
import csv
import math
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

from replicate._jsonschema import jsonschema
import yaml

HERE = Path(__file__).resolve().parent
CLAIMS_FILE = HERE / "claims.yaml"
SCHEMA_FILE = HERE / "schemas" / "claims.schema.yaml"
REPORTED_DIR = HERE / "reported"

HEADLINE_IDS = (
    "tango-perf-kept-ov7b-r10", "tango-speedup-ov7b-r10",
    "stts-tokens-pruned-50", "stts-efficiency-128f", "stts-efficiency-256f",
    "stts-accuracy-drop-13tasks", "stts-test-time-scaling",
    "holitom-flops-ov7b-r10", "holitom-perf-kept-ov7b-r10", "holitom-ttft-ov7b-r10",
    "holitom-decode-ov7b-r10", "holitom-outer-reduction-r10", "holitom-best-k-ov7b",
)
#: The cpu tier's SynthVideoQA analogues of headline claims (kind: analogue, verdict `analogue`):
#: their own README table, never beside the papers' numbers.
ANALOGUE_HEADLINE_IDS = ("holitom-perf-kept-synth-r10", "tango-perf-kept-synth-r10")
#: Claims of this project (kind: project), e.g. the cost model against CPU timings.
PROJECT_HEADLINE_IDS = ("project-costmodel-cpu-ttft-tango-r10",)
CLAIM_KINDS = ("paper", "project", "analogue")

MODEL_SHORT = {
    "llava-onevision-7b": "ov7b", "llava-onevision-72b": "ov72b", "llava-video-7b": "video7b",
    "qwen2.5-vl-7b": "qwen7b", "molmo2-4b": "molmo4b",
}
RESULT_BENCHES = ("mvbench", "egoschema", "longvideobench", "videomme", "avg")
# pp per 0.05 T rounding: printed FLOPs are rounded to 0.1 T
FLOPS_PRINT_HALF_STEP = 0.05
RATIO_PRINT_HALF_STEP = 0.05


class ClaimsError(ValueError):
    """A malformed claims file; the message names the claim and the field."""


@lru_cache(maxsize=4)
def _schema(path: str = str(SCHEMA_FILE)) -> dict:
    return yaml.safe_load(Path(path).read_text())


def _validator(schema: dict, ref: str | None = None) -> jsonschema.Draft202012Validator:
    if ref is not None:
        schema = {**schema, "$ref": f"#/$defs/{ref}"}
        schema.pop("properties", None)
        schema.pop("required", None)
        schema.pop("additionalProperties", None)
        schema.pop("type", None)
    return jsonschema.Draft202012Validator(schema)


def _format_error(err: jsonschema.ValidationError, where: str) -> str:
    path = "/".join(str(p) for p in err.absolute_path) or "(top level)"
    msg = err.message
    if err.validator == "oneOf" and path.endswith("tolerance"):
        msg = "tolerance needs exactly one of 'abs' or 'rel' (plus a rationale)"
    return f"{where}: field '{path}': {msg}"


def validate_document(doc: Any, *, schema_path: Path = SCHEMA_FILE) -> None:
    """Validate a parsed claims.yaml; raises ClaimsError naming the claim id and the field."""
    schema = _schema(str(schema_path))
    if not isinstance(doc, dict):
        raise ClaimsError("claims file must be a mapping with keys 'version', 'claims' (and 'tables')")
    errors = sorted(_validator(schema).iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = "claims file"
        path = list(err.absolute_path)
        if len(path) >= 2 and path[0] in ("claims", "tables"):
            item = doc[path[0]][path[1]]
            name = item.get("id") or item.get("id_prefix") if isinstance(item, dict) else None
            where = f"{path[0][:-1]} {name!r} (#{path[1]})" if name else f"{path[0][:-1]} #{path[1]}"
            rel = path[2:]
            err_path = "/".join(str(p) for p in rel) or "(whole entry)"
            raise ClaimsError(f"{where}: field '{err_path}': {_field_message(err)}")
        raise ClaimsError(_format_error(err, where))


def _field_message(err: jsonschema.ValidationError) -> str:
    if err.validator == "oneOf":
        return "tolerance needs exactly one of 'abs' or 'rel' (plus a rationale)"
    return err.message


def validate_claim(claim: Mapping[str, Any], *, schema_path: Path = SCHEMA_FILE) -> None:
    schema = _schema(str(schema_path))
    errors = sorted(_validator(schema, "claim").iter_errors(dict(claim)), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        path = "/".join(str(p) for p in err.absolute_path) or "(whole entry)"
        raise ClaimsError(f"claim {claim.get('id')!r}: field '{path}': {_field_message(err)}")


# ---------------------------------------------------------------------------- generation
def read_reported(name: str, reported_dir: Path = REPORTED_DIR) -> list[dict[str, Any]]:
    """Rows of a reported CSV with numbers parsed (empty cells -> None)."""
    path = Path(reported_dir) / name
    if not path.exists():
        raise ClaimsError(f"reported table {name!r} not found in {reported_dir}")
    rows = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            rows.append({k: _parse(v) for k, v in row.items()})
    return rows


def _parse(value: str) -> Any:
    if value is None or value == "":
        return None
    if value in ("true", "false"):
        return value == "true"
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() and "." not in value else number


def ratio_rounding_band(flops_t: float, vanilla_t: float) -> float:
    """Half-width (pp) of a printed FLOPs ratio given both T values are rounded to 0.1 T."""
    h = FLOPS_PRINT_HALF_STEP
    band = 100 * (h / vanilla_t + flops_t * h / vanilla_t ** 2) + RATIO_PRINT_HALF_STEP
    return math.ceil(band * 100) / 100


def _tolerance(spec: Mapping[str, Any], kind: str, **ctx: float) -> dict[str, Any]:
    try:
        tmpl = dict(spec["tolerance_by_kind"][kind])
    except KeyError:
        raise ClaimsError(f"table {spec['id_prefix']!r}: field 'tolerance_by_kind/{kind}' is missing") from None
    mode = tmpl.pop("mode", None)
    if mode == "propagate_rounding":
        tmpl["abs"] = ratio_rounding_band(ctx["flops_t"], ctx["vanilla_t"])
    return tmpl


def _kind_meta(spec: Mapping[str, Any], kind: str) -> tuple[str, str | None]:
    try:
        tier = spec["tier_by_kind"][kind]
    except KeyError:
        raise ClaimsError(f"table {spec['id_prefix']!r}: field 'tier_by_kind/{kind}' is missing") from None
    return tier, spec.get("evaluator_by_kind", {}).get(kind)


def _setting(spec: Mapping[str, Any], row: Mapping[str, Any], *, retention: float | None) -> dict[str, Any]:
    model, method = row["model"], row["method"]
    setting: dict[str, Any] = {"model": model, "method": method}
    frames = spec.get("frames_by_model", {}).get(model)
    if row.get("frames") is not None:
        frames = int(row["frames"])
    if frames is not None:
        setting["frames"] = frames
    if retention is not None:
        setting["retention"] = retention
        if method in ("holitom", "holitom-wo-m"):
            setting["tau"] = 0.65 if abs(retention - 0.10) < 1e-9 else 0.80
    extra = dict(spec.get("method_setting", {}).get(method, {}))
    extra.update(spec.get("model_method_setting", {}).get(model, {}).get(method, {}))
    setting.update(extra)
    if spec.get("benchmarks"):
        setting["benchmarks"] = list(spec["benchmarks"])
    return setting


def claim_kind(claim: Mapping[str, Any]) -> str:
    """paper (default), project or analogue."""
    return claim.get("kind", "paper")


def _claim(spec, cid, quantity, value, unit, kind, setting, text, *, tol_kind=None, **tol_ctx) -> dict[str, Any]:
    tier, evaluator = _kind_meta(spec, kind)
    claim = {
        "id": cid,
        "paper": spec["paper"],
        "claim": text,
        "source": copy.deepcopy(spec["source"]),
        "quantity": quantity,
        "reported": {"value": float(value), "unit": unit},
        "tolerance": _tolerance(spec, tol_kind or kind, **tol_ctx),
        "setting": setting,
        "tier": tier,
        "generated_from": f"replicate/reported/{spec['csv']}",
    }
    if evaluator:
        claim["evaluator"] = evaluator
    unpublished = spec.get("config_unpublished_by_method", {}).get(setting.get("method"))
    if unpublished and kind in ("flops", "ratio"):  # the FLOPs depend on the unpublished stages
        claim["config_unpublished"] = copy.deepcopy(unpublished)
    return claim


def _results_claims(spec, rows) -> Iterable[dict[str, Any]]:
    vanilla = {r["model"]: r["flops_t"] for r in rows if r["method"] == "vanilla"}
    for row in rows:
        model, method = row["model"], row["method"]
        pre = row["pre_llm_pct"]
        retention = None if pre >= 100 else pre / 100
        tag = f"{MODEL_SHORT[model]}-{method}" if spec.get("include_model") else method
        suffix = "" if retention is None else f"-r{int(pre):02d}"
        setting = _setting(spec, row, retention=retention)
        where = f"{row['label']} on {model}" + ("" if retention is None else f" at {int(pre)} % pre-LLM")
        p = spec["id_prefix"]
        yield _claim(spec, f"{p}-flops-{tag}{suffix}", "flops_tflops", row["flops_t"], "TFLOPs", "flops",
                     setting, f"{where}: prefill FLOPs {row['flops_t']} T")
        if method != "vanilla":
            yield _claim(spec, f"{p}-ratio-{tag}{suffix}", "flops_ratio", row["flops_ratio_pct"], "%",
                         "ratio", setting, f"{where}: FLOPs ratio {row['flops_ratio_pct']} %",
                         flops_t=row["flops_t"], vanilla_t=vanilla[model])
        for bench in RESULT_BENCHES:
            if row.get(bench) is None:
                continue  # '-' in the paper: not reported
            s = dict(setting)
            if bench != "avg":
                s["benchmarks"] = [bench]
            yield _claim(spec, f"{p}-acc-{tag}{suffix}-{bench}", "accuracy", row[bench], "%", "acc", s,
                         f"{where}: {bench} {row[bench]}")
        if row.get("perf_pct") is not None and method != "vanilla":
            yield _claim(spec, f"{p}-perf-{tag}{suffix}", "perf_kept", row["perf_pct"], "%", "perf", setting,
                         f"{where}: {row['perf_pct']} % of vanilla performance")


def _ttft_claims(spec, rows):
    for row in rows:
        ret = row["retention_pct"]
        setting = _setting(spec, row, retention=None if ret >= 100 else ret / 100)
        p, m = spec["id_prefix"], row["method"]
        for part in ("vit", "other", "llm"):
            yield _claim(spec, f"{p}-{part}-{m}", "latency_ms", row[f"{part}_ms"], "ms", "latency", setting,
                         f"{row['label']}: TTFT {part} part {row[f'{part}_ms']} ms")
        yield _claim(spec, f"{p}-score-{m}", "accuracy", row["avg"], "%", "acc", setting,
                     f"{row['label']}: average score {row['avg']} (TTFT figure label)")


def _decode_claims(spec, rows):
    for row in rows:
        ret = row["retention_pct"]
        setting = _setting(spec, row, retention=None if ret >= 100 else ret / 100)
        yield _claim(spec, f"{spec['id_prefix']}-{row['method']}", "throughput_tok_s", row["tok_s"], "tok/s",
                     "throughput", setting, f"{row['label']}: decode throughput {row['tok_s']} tok/s")


def _k_sweep_claims(spec, rows):
    for row in rows:
        setting = _setting(spec, row, retention=0.10)
        setting.update({"k": int(row["k"]), "r": float(row["r"])})
        yield _claim(spec, f"{spec['id_prefix']}-k{int(row['k'])}", "accuracy", row["avg"], "%", "acc", setting,
                     f"inner merging at K={int(row['k'])}, R={row['r']}: average {row['avg']}")


def _frames_sweep_claims(spec, rows):
    for row in rows:
        setting = _setting(spec, row, retention=None)
        setting["note"] = "retention of the frames sweep is not stated in what was read"
        tol_kind = "acc_approx" if row.get("approximate") else "acc"
        yield _claim(spec, f"{spec['id_prefix']}-{row['method']}-f{int(row['frames'])}", "accuracy", row["avg"],
                     "%", "acc", setting, f"{row['label']} at {int(row['frames'])} frames: average {row['avg']}",
                     tol_kind=tol_kind)


LAYOUTS = {"results": _results_claims, "ttft": _ttft_claims, "decode": _decode_claims,
           "k_sweep": _k_sweep_claims, "frames_sweep": _frames_sweep_claims}


def expand_table(spec: Mapping[str, Any], reported_dir: Path = REPORTED_DIR) -> list[dict[str, Any]]:
    rows = read_reported(spec["csv"], reported_dir)
    return list(LAYOUTS[spec["layout"]](spec, rows))


# ---------------------------------------------------------------------------- loading
def load_document(path: Path | str = CLAIMS_FILE) -> dict[str, Any]:
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ClaimsError(f"{path}: not valid YAML: {exc}") from exc
    validate_document(doc)
    return doc


def load_claims(path: Path | str = CLAIMS_FILE, *, reported_dir: Path | str | None = None) -> list[dict[str, Any]]:
    """All claims (hand-written first, then generated), validated, with unique ids."""
    path = Path(path)
    reported = Path(reported_dir) if reported_dir is not None else path.parent / "reported"
    doc = load_document(path)
    claims = [dict(c) for c in doc.get("claims", [])]
    for spec in doc.get("tables", []):
        claims.extend(expand_table(spec, reported))
    seen: dict[str, int] = {}
    for i, claim in enumerate(claims):
        validate_claim(claim)
        if claim["id"] in seen:
            raise ClaimsError(f"claim {claim['id']!r}: field 'id': duplicate id (entries #{seen[claim['id']]} and #{i})")
        seen[claim["id"]] = i
    return claims


def claims_by_id(path: Path | str = CLAIMS_FILE, **kw: Any) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in load_claims(path, **kw)}


def get_claim(claim_id: str, path: Path | str = CLAIMS_FILE, **kw: Any) -> dict[str, Any]:
    claims = claims_by_id(path, **kw)
    try:
        return claims[claim_id]
    except KeyError:
        close = [c for c in claims if claim_id.split("-")[0] in c][:5]
        raise KeyError(f"unknown claim id {claim_id!r}; e.g. {close or list(claims)[:5]}") from None
