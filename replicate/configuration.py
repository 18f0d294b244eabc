"""Load, complete and validate the workflow config.

The schema (replicate/schemas/config.schema.yaml) is the one source of every key's default;
replicate/config.yaml, profiles and ``--config`` set only what differs, and ``with_defaults``
fills the rest. ``validate_config`` gives the error Snakemake's validator does not: the bad key,
where it is and the allowed keys.
"""
from __future__ import annotations

import copy
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from replicate._jsonschema import jsonschema
import yaml

HERE = Path(__file__).resolve().parent
CONFIG_FILE = HERE / "config.yaml"
SCHEMA_FILE = HERE / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """An invalid workflow config; the message names the key and what is allowed."""


@lru_cache(maxsize=2)
def schema(path: str = str(SCHEMA_FILE)) -> dict:
    return yaml.safe_load(Path(path).read_text())


def _resolve(node: dict, root: dict) -> dict:
    while "$ref" in node:
        node = root["$defs"][node["$ref"].split("/")[-1]]
    return node


def _subschema(root: dict, path: list) -> dict:
    node = root
    for part in path:
        node = _resolve(node, root)
        if isinstance(part, int):
            node = node.get("items", {})
        else:
            props = node.get("properties", {})
            node = props.get(part, node.get("additionalProperties", {}) if isinstance(
                node.get("additionalProperties"), dict) else {})
    return _resolve(node, root)


#: Config keys that were renamed (dotted path of the old key -> the new one): a user's config may
#: still use the old name, and "unknown key" alone would not say what it is called now.
RENAMED_KEYS = {"embedded": "cpu"}


def check_renamed_keys(config: Mapping[str, Any]) -> None:
    """A config that sets a renamed key gets an error naming the new key."""
    for old, new in RENAMED_KEYS.items():
        *parents, leaf = old.split(".")
        node: Any = config
        for part in parents:
            node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, Mapping) and leaf in node:
            raise ConfigError(f"config key {old!r} was renamed to {new!r}: set {new}.<key> where the config "
                              f"sets {old}.<key> (e.g. --config '{new}={{\"n_samples\": 4}}')")


def validate_config(config: Mapping[str, Any], *, schema_path: Path = SCHEMA_FILE) -> None:
    check_renamed_keys(config)
    root = schema(str(schema_path))
    errors = sorted(jsonschema.Draft202012Validator(root).iter_errors(dict(config)),
                    key=lambda e: (len(list(e.absolute_path)), list(map(str, e.absolute_path))))
    if not errors:
        return
    err = errors[0]
    where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
    if err.validator == "additionalProperties":
        node = _subschema(root, list(err.absolute_path))
        allowed = sorted(node.get("properties", {}))
        bad = sorted(set(err.instance) - set(allowed))
        raise ConfigError(f"unknown config key(s) {bad} in {where}; allowed keys: {allowed}")
    if err.validator == "enum":
        raise ConfigError(f"config key {where}: {err.instance!r} is not allowed; allowed values: {err.validator_value}")
    raise ConfigError(f"config key {where}: {err.message}")


def coerce_cli_values(config: dict[str, Any], *, schema_path: Path = SCHEMA_FILE) -> dict[str, Any]:
    """Coerce ``--config`` strings to the schema's types, in place.

    Snakemake parses ``--config gpu=true`` as the string 'true' and nested values with YAML's
    BaseLoader, so ``cpu={"n_samples": 4}`` arrives as {"n_samples": "4"} and ``seeds=[1]`` as
    ["1"]. Every string where the schema wants a boolean, integer, number, array or object is parsed
    (YAML, then the type is checked by the validator); other strings are left alone."""
    root = schema(str(schema_path))
    for key in list(config):
        config[key] = _coerce(config[key], _subschema(root, [key]), root)
    return config


_SCALARS = {"boolean", "integer", "number"}


def _types(node: dict, root: dict) -> set:
    node = _resolve(node, root)
    t = node.get("type")
    types = set(t) if isinstance(t, list) else ({t} if t else set())
    if "enum" in node:
        types |= {type(v).__name__ for v in node["enum"]}
    return types


def _coerce(value: Any, node: dict, root: dict) -> Any:
    node = _resolve(node, root)
    types = _types(node, root)
    if isinstance(value, str) and types & (_SCALARS | {"array", "object"}) and "string" not in types \
            and "str" not in types:
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value  # the validator names the key and the expected type
        if isinstance(parsed, str) or parsed is None:
            return value
        value = parsed
    if isinstance(value, dict):
        return {k: _coerce(v, _child(node, k, root), root)
                for k, v in value.items()}
    if isinstance(value, list):
        item = _resolve(node.get("items", {}), root) if isinstance(node.get("items"), dict) else {}
        return [_coerce(v, item, root) for v in value]
    return value


def _child(node: dict, key: str, root: dict) -> dict:
    props = node.get("properties", {})
    if key in props:
        return _resolve(props[key], root)
    extra = node.get("additionalProperties")
    return _resolve(extra, root) if isinstance(extra, dict) else {}


def with_defaults(config: Mapping[str, Any], *, schema_path: Path = SCHEMA_FILE) -> dict[str, Any]:
    """A copy of ``config`` with every key it leaves out set to the schema's default (nested
    sections too: a section it leaves out is built from its keys' defaults)."""
    root = schema(str(schema_path))
    return _fill(copy.deepcopy(dict(config)), root, root)


def _properties(node: dict, root: dict) -> dict:
    """Properties of an object schema, with those of a ``$ref`` beside them (its defaults per use)."""
    props: dict = {}
    if "$ref" in node:
        props.update(_resolve(node, root).get("properties", {}))
    for name, sub in node.get("properties", {}).items():
        props[name] = {**props.get(name, {}), **sub}
    return props


def _fill(instance: dict, node: dict, root: dict) -> dict:
    for name, sub in _properties(node, root).items():
        if name not in instance and "default" in sub:
            instance[name] = copy.deepcopy(sub["default"])
        elif name not in instance and _properties(sub, root):
            filled = _fill({}, sub, root)
            if filled:
                instance[name] = filled
        elif isinstance(instance.get(name), dict) and _properties(sub, root):
            _fill(instance[name], sub, root)
    return instance


def load_config(path: Path | str = CONFIG_FILE, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The config file merged (deeply) with ``overrides``, validated, with the schema's defaults."""
    config = yaml.safe_load(Path(path).read_text()) or {}
    if overrides:
        config = deep_merge(config, overrides)
    validate_config(config)
    return with_defaults(config)


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# ---------------------------------------------------------------- method options (the method's own schema)
def option_sites(config: Mapping[str, Any]) -> list[tuple[str, dict, list]]:
    """(where, {method: options}, retentions the options run at) for every per-method options block."""
    sites = []
    cpu = config.get("cpu") or {}
    if isinstance(cpu.get("options"), dict):
        sites.append(("cpu.options", cpu["options"], list(cpu.get("retentions") or [0.5])))
    for i, cell in enumerate((config.get("analytic") or {}).get("grid") or []):
        if isinstance(cell, dict) and isinstance(cell.get("options"), dict):
            sites.append((f"analytic.grid[{i}].options", cell["options"], list(cell.get("retentions") or [0.5])))
    return sites


def _type_ok(value: Any, declared: str) -> bool:
    """Whether ``value`` fits the dataclass field type string (int, float, str, bool, Optional[..],
    Literal[..], tuple[int, ...]); an unknown type string is left to the Config's own checks."""
    declared = declared.replace(" ", "")
    if declared.startswith("Optional[") and declared.endswith("]"):
        return value is None or _type_ok(value, declared[len("Optional["):-1])
    if declared.startswith("Literal["):
        return repr(value).replace(" ", "") in declared[len("Literal["):-1].split(",")
    if declared in ("int",):
        return isinstance(value, int) and not isinstance(value, bool)
    if declared in ("float",):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if declared == "bool":
        return isinstance(value, bool)
    if declared == "str":
        return isinstance(value, str)
    if declared.startswith(("tuple[int", "list[int")):
        return isinstance(value, (list, tuple)) and all(_type_ok(v, "int") for v in value)
    if declared.startswith(("tuple[float", "list[float")):
        return isinstance(value, (list, tuple)) and all(_type_ok(v, "float") for v in value)
    return True


def _coerce_option(value: Any, declared: str) -> Any:
    """A string from ``--config`` that parses as the declared type becomes that type."""
    if isinstance(value, str) and "str" not in declared and "Literal" not in declared:
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        return parsed if _type_ok(parsed, declared) else value
    return value


def validate_method_options(config: Mapping[str, Any], *, skip_defaults: bool = False) -> None:
    """Every per-method options block checked against the method's typed Config: option names,
    types and (by building the Config at each retention it runs at, on a 28-layer LLM as the papers
    state K) ranges. A setting the method itself refuses without the override (DyCoke below 25 %)
    is its rule, not a config error: that cell is written as not-applicable by the harness.
    ``skip_defaults``: leave out the blocks equal to the schema's defaults (checked by the tests),
    so a config that sets no options never imports the methods (and torch)."""
    sites = option_sites(config)
    if skip_defaults:
        sites = [s for s in sites if s not in option_sites(with_defaults({}))]
    if not sites:
        return
    from methods import registry  # the manifest: names, types and defaults without importing a method

    for where, per_method, retentions in sites:
        for method, opts in per_method.items():
            if not isinstance(opts, dict):
                raise ConfigError(f"config key {where}.{method}: options must be a mapping, got {opts!r}")
            try:
                name, fixed = registry.resolve(method)
            except ValueError as exc:
                raise ConfigError(f"config key {where}.{method}: {exc}") from None
            if name != method:  # a variant's options are in its notation (tango-intra: k, p)
                notation = registry.notation(method)
                opts = {notation.get(k, k): v for k, v in opts.items()}
            method, allowed = name, registry.method_info(name)["options"]
            unknown = sorted(set(opts) - set(allowed))
            if unknown:
                raise ConfigError(f"config key {where}.{method}: unknown option(s) {unknown} for method "
                                  f"{method!r}; allowed: {sorted(allowed)}")
            for name in list(opts):
                declared = str(allowed[name]["type"])
                opts[name] = _coerce_option(opts[name], declared)
                if not _type_ok(opts[name], declared):
                    raise ConfigError(f"config key {where}.{method}.{name}: {opts[name]!r} is not a {declared} "
                                      f"(method {method!r}, default {allowed[name]['default']!r})")
            _check_option_ranges(where, method, {**fixed, **opts}, retentions)


def _check_option_ranges(where: str, method: str, opts: dict, retentions: list) -> None:
    """Each retention's options built into the method's Config (``Method.from_setting`` on the
    papers' 28-layer LLM), with and without the config's: only the class can check ranges, so this
    imports the method (and torch), and only for a config that sets options."""
    from methods.registry import method_class, takes_retention
    from methods.setting import PaperSetting

    cls = method_class(method)
    for r in (retentions if takes_retention(method) else [None]):
        try:  # the method's own rule at this retention, no override: not a config error
            cls.from_setting(PaperSetting(r)).build()
        except (ValueError, TypeError):
            continue
        try:
            cls.from_setting(PaperSetting(r, opts)).build()
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"config key {where}.{method} (options {opts}, retention {r}): {exc}; "
                              f"allowed options: {sorted(cls.options())}") from None


# ---------------------------------------------------------------- values the schema cannot express
def validate_finite(config: Mapping[str, Any]) -> None:
    """NaN/inf anywhere (JSON schema's range keywords let NaN through: every comparison is False)."""
    from replicate.limits import LimitError, check_finite

    try:
        check_finite(dict(config), "")
    except LimitError as exc:
        raise ConfigError(f"config key {str(exc).lstrip('.')}") from None


def validate_limits(config: Mapping[str, Any]) -> None:
    """Frames that overflow the architecture's context length; checkpoint dirs without config.json."""
    from replicate.limits import LimitError, check_frames_fit

    try:
        for i, cell in enumerate((config.get("analytic") or {}).get("grid") or []):
            for model in cell.get("models", []):
                for f in cell.get("frames", []) or []:
                    check_frames_fit(model, f, f"config key analytic.grid[{i}].frames")
        check_checkpoint_dirs(config)
        check_efficiency_frames(config)
        hol = config.get("holitom") or {}
        for f in hol.get("frames", []) or []:
            check_frames_fit(hol.get("model", "llava-onevision-7b"), f, "config key holitom.frames")
    except LimitError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith("config key") else f"config key {msg}") from None


def check_efficiency_frames(config: Mapping[str, Any]) -> None:
    """efficiency.{cpu,gpu}.frames within the timed architecture's context (the harness's own check)."""
    from replicate.harness.efficiency import CPU_BENCH_CONFIG
    from replicate.harness.validate import arch_limits
    from replicate.limits import LimitError

    for side, default_arch in (("cpu", "cpu-bench"), ("gpu", "llava-onevision-7b")):
        run = ((config.get("efficiency") or {}).get(side)) or {}
        frames = run.get("frames")
        if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1:
            continue  # the schema names it
        arch = run.get("arch", default_arch)
        per_frame, context = arch_limits(arch, CPU_BENCH_CONFIG)
        if context is not None and frames * per_frame > context:
            raise LimitError(f"config key efficiency.{side}.frames: {frames} frames of {arch} are "
                             f"{frames * per_frame} visual tokens, more than its context length {context}; "
                             f"at most {context // per_frame} frames fit")


def check_checkpoint_dirs(config: Mapping[str, Any]) -> None:
    """A checkpoint path that exists must be an HF checkpoint dir (config.json); an empty or missing
    one is a tier that cannot run (replicate.tiers writes the reason into its claims)."""
    from replicate.limits import LimitError

    for name, value in ((config.get("paths") or {}).get("checkpoints") or {}).items():
        if isinstance(value, str) and value and Path(value).exists() and not (Path(value) / "config.json").is_file():
            raise LimitError(f"config key paths.checkpoints.{name}: {value!r} has no config.json "
                             f"(expected a local HF checkpoint directory)")


def check_all(config: Mapping[str, Any], *, schema_path: Path = SCHEMA_FILE, skip_default_options: bool = False) -> None:
    """Finite numbers, schema (named key and allowed values), context length, each method's own
    options (``skip_default_options``: those the config sets, see validate_method_options)."""
    check_renamed_keys(config)
    validate_finite(config)
    validate_config(config, schema_path=schema_path)
    validate_limits(config)
    validate_method_options(config, skip_defaults=skip_default_options)


# ---------------------------------------------------------------- profiles that layer
def _profile_configfiles(argv: list[str], repo: Path) -> list[Path]:
    """Config files named by the ``--profile``/``--workflow-profile`` profiles in ``argv``."""
    dirs: list[Path] = []
    for i, arg in enumerate(argv):
        for flag in ("--profile", "--workflow-profile"):
            if arg == flag and i + 1 < len(argv):
                dirs.append(Path(argv[i + 1]))
            elif arg.startswith(flag + "="):
                dirs.append(Path(arg.split("=", 1)[1]))
    files: list[Path] = []
    for d in dirs:
        if not d.is_absolute():  # --directory has already chdir'ed: try the shell's cwd and the repo too
            bases = [Path(os.environ.get("PWD", ".")), Path.cwd(), repo, repo / "profiles"]
            d = next((b / d for b in bases if (b / d).exists()), d)
        main = d if d.is_file() else d / "config.yaml"
        if not main.is_file():
            continue
        prof = yaml.safe_load(main.read_text()) or {}
        named = prof.get("configfile", prof.get("configfiles", []))
        for name in [named] if isinstance(named, str) else list(named or []):
            files.append((main.parent / name).resolve())
    return files


def layer_profile_configfiles(config: dict, overwrite: Mapping[str, Any] | None, argv: list[str],
                              repo: Path) -> list[Path]:
    """Snakemake lets ``--configfile x.yaml`` on the command line *replace* the profile's
    ``configfile:`` (``--profile profiles/smoke --configfile x.yaml`` silently ran the full grid).
    Layer them instead, in place: workflow config < profile config files < command-line config
    files < ``--config``. Returns the profile files that were layered back in."""
    cli_files = any(a in ("--configfile", "--configfiles") or a.startswith(("--configfile=", "--configfiles="))
                    for a in argv)
    if not cli_files:
        return []
    dropped = [f for f in _profile_configfiles(argv, repo) if f.is_file()]
    if not dropped:
        return []
    merged = dict(config)
    for f in dropped:
        merged = deep_merge(merged, yaml.safe_load(f.read_text()) or {})
    merged = deep_merge(merged, dict(overwrite or {}))
    config.clear()
    config.update(merged)
    return dropped


def prepare_config(config: dict, *, overwrite: Mapping[str, Any] | None = None, argv: list[str] | None = None,
                   repo: Path = HERE.parent, cli_configfiles: Any = None) -> dict:
    """The Snakefile's one call: layer profiles, coerce ``--config`` strings, fill the schema's
    defaults (in place), check everything; method options only where they differ from the
    defaults, so parsing the workflow (every job does) imports the methods (torch, ~2 s) only
    when the config sets some.
    ``cli_configfiles`` (Snakemake's list of command-line config files) gets the layered profile
    files prepended so jobs Snakemake spawns elsewhere (cluster executors) see the same config."""
    layered = layer_profile_configfiles(config, overwrite, list(argv or []), repo)
    if layered and isinstance(cli_configfiles, list):
        cli_configfiles[:0] = [str(f) for f in layered if str(f) not in map(str, cli_configfiles)]
    if layered:
        print(f"replicate: profile config file(s) {[str(f) for f in layered]} layered under the "
              f"command-line --configfile", flush=True)
    coerce_cli_values(config)
    config.update(with_defaults(config))
    check_all(config, skip_default_options=True)
    return config


# ---------------------------------------------------------------- claim targets
def unknown_claim_message(claim_id: str, known: list[str]) -> str:
    """What a mistyped ``results/claims/<id>.json`` target says: the close ids (difflib)."""
    import difflib

    close = difflib.get_close_matches(claim_id, known, n=5, cutoff=0.5)
    hint = f"close ids: {close}" if close else f"{len(known)} ids exist (see replicate/claims.yaml)"
    return f"unknown claim id {claim_id!r} (target results/claims/{claim_id}.json); {hint}"


def raise_unknown_claim(claim_id: str, known: list[str]):
    """Input function of rule unknown_claim: always raises (the DAG stops with the close ids)."""
    raise ValueError(unknown_claim_message(claim_id, known))


def main(argv: list[str] | None = None) -> int:
    """``python -m replicate.configuration [CONFIG.yaml]``: the resolved config (defaults filled)."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m replicate.configuration", description=main.__doc__)
    ap.add_argument("config", nargs="?", default=str(CONFIG_FILE))
    args = ap.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        ap.error(str(exc))
    print(yaml.safe_dump(config, sort_keys=False), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
