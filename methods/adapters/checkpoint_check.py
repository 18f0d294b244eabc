"""A local HF checkpoint is checked whole before its weights are used; nothing is ever left random.

transformers loads a checkpoint that lacks a weight by initialising that tensor at random (it only
prints a load report), falls back to nothing for a missing tokenizer (the adapters then used their
byte-level stand-in) and reports a truncated shard or a list-valued ``config.json`` as a raw
traceback. :func:`load_checked` is the one path every adapter family loads a checkpoint through:

1. ``config.json``: a JSON mapping whose ``model_type`` is the family's;
2. the safetensors files: the index (when sharded) is a mapping whose every file exists and holds
   the tensors it lists; every header is readable and every tensor's bytes lie inside its file (a
   truncated shard is named); the dtype and shape agree with the byte count;
3. the weights the architecture expects: the model is built from ``config.json`` on the meta
   device (shapes only, no memory) and its ``state_dict`` compared with the checkpoint's tensors,
   renamed the way transformers renames them on load; a missing tensor or a shape that differs is
   named with its file and the expected shape;
4. the tokenizer and processor files of a real checkpoint (``tokenizer.json`` or
   ``tokenizer_config.json``, ``preprocessor_config.json``); the byte-level tokenizer is only used
   when a caller passes it explicitly (tiny random-weight models in tests);
5. after loading, transformers' own loading report must list no missing or mismatched weight.

Every error is a :class:`CheckpointError` naming the directory, the file and what was expected.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

from costmodel.cli import UsageError

INDEX_FILE = "model.safetensors.index.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
PROCESSOR_FILE = "preprocessor_config.json"
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
               "BOOL": 1, "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1}
MAX_HEADER_BYTES = 100 * 2 ** 20  # safetensors' own limit on the JSON header


class CheckpointError(UsageError):
    """A checkpoint directory that cannot be used as it is; the message names the file and what was expected."""


# ----------------------------------------------------------------------------------- config.json
def read_config_json(path: Path, model_type: str) -> dict:
    """``path/config.json`` as a mapping of ``model_type``."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint directory {str(path)!r} does not exist (expected a local HF "
                              f"checkpoint with model_type {model_type!r})")
    f = path / "config.json"
    if not f.is_file():
        raise CheckpointError(f"{str(path)!r} has no config.json (expected an HF checkpoint with model_type "
                              f"{model_type!r}: config.json + *.safetensors + tokenizer and processor files)")
    cfg = _read_json(f)
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{str(f)!r} holds a JSON {type(cfg).__name__}; expected a mapping with "
                              f"model_type {model_type!r}")
    if cfg.get("model_type") != model_type:
        raise CheckpointError(f"{str(f)!r} has model_type {cfg.get('model_type')!r}; expected {model_type!r}")
    return cfg


# ----------------------------------------------------------------------------------- safetensors
def read_safetensors_header(f: Path) -> dict[str, tuple[str, list[int]]]:
    """{tensor name: (dtype, shape)} of one safetensors file, its layout checked against the file size."""
    size = f.stat().st_size
    if size < 8:
        raise CheckpointError(f"{str(f)!r} is {size} bytes: truncated (a safetensors file starts with an "
                              f"8-byte header length)")
    with open(f, "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        if n < 2 or n > MAX_HEADER_BYTES or 8 + n > size:
            raise CheckpointError(f"{str(f)!r}: header length {n} does not fit the file ({size} bytes): "
                                  f"truncated or not a safetensors file")
        raw = fh.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{str(f)!r}: the safetensors header is not JSON (damaged file)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{str(f)!r}: the safetensors header is not a mapping (damaged file)")
    return {name: _tensor_entry(f, name, entry, 8 + n, size) for name, entry in header.items()
            if name != "__metadata__"}


def _tensor_entry(f: Path, name: str, entry: Any, data_start: int, size: int) -> tuple[str, list[int]]:
    ok = (isinstance(entry, dict) and entry.get("dtype") in DTYPE_BYTES and isinstance(entry.get("shape"), list)
          and all(isinstance(d, int) and d >= 0 for d in entry["shape"])
          and isinstance(entry.get("data_offsets"), list) and len(entry["data_offsets"]) == 2
          and all(isinstance(o, int) for o in entry["data_offsets"]))
    if not ok:
        raise CheckpointError(f"{str(f)!r}: tensor {name!r} has a malformed header entry {entry!r}")
    begin, end = entry["data_offsets"]
    if not 0 <= begin <= end or data_start + end > size:
        raise CheckpointError(f"{str(f)!r}: tensor {name!r} ends at byte {data_start + end}, beyond the file's "
                              f"{size} bytes: the file is truncated")
    if end - begin != math.prod(entry["shape"]) * DTYPE_BYTES[entry["dtype"]]:
        raise CheckpointError(f"{str(f)!r}: tensor {name!r} ({entry['dtype']} {entry['shape']}) has {end - begin} "
                              f"bytes; its shape needs {math.prod(entry['shape']) * DTYPE_BYTES[entry['dtype']]}")
    return entry["dtype"], list(entry["shape"])


def _read_json(f: Path):
    """The JSON value in file ``f``; CheckpointError naming the file when it is not readable JSON."""
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{str(f)!r} is not readable JSON ({exc})") from None


def _read_index(path: Path) -> dict[str, str]:
    f = path / INDEX_FILE
    index = _read_json(f)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise CheckpointError(f"{str(f)!r} has no 'weight_map' mapping tensor names to shard files")
    return weight_map


def checkpoint_tensors(path: Path) -> dict[str, tuple[list[int], str]]:
    """{tensor name: (shape, file name)} of every safetensors tensor of a checkpoint directory."""
    path = Path(path)
    if (path / INDEX_FILE).is_file():
        weight_map = _read_index(path)
        files = sorted(set(weight_map.values()))
        for name in files:
            if not (path / name).is_file():
                listed = next(k for k, v in weight_map.items() if v == name)
                raise CheckpointError(f"{str(path / INDEX_FILE)!r} lists shard {name!r} (e.g. for {listed!r}), "
                                      f"which is not in {str(path)!r}")
    else:
        files = sorted(p.name for p in path.glob("*.safetensors"))
        weight_map = None
    if not files:
        bins = sorted(p.name for p in path.glob("*.bin"))
        extra = f" (found {bins[:3]}: PyTorch .bin weights are not read; convert them to safetensors)" if bins else ""
        raise CheckpointError(f"{str(path)!r} has no *.safetensors weights{extra}")
    tensors: dict[str, tuple[list[int], str]] = {}
    for name in files:
        for tensor, (_, shape) in read_safetensors_header(path / name).items():
            tensors[tensor] = (shape, name)
    for tensor, name in (weight_map or {}).items():
        if tensors.get(tensor, (None, None))[1] != name:
            raise CheckpointError(f"{str(path / INDEX_FILE)!r} lists tensor {tensor!r} in {name!r}, which does "
                                  f"not hold it")
    return tensors


# ----------------------------------------------------------------------------------- expected weights
def meta_model(hf_class: str, path: Path):
    """The architecture of ``path/config.json`` built on the meta device (shapes only)."""
    import torch
    import transformers

    cls = getattr(transformers, hf_class)
    try:
        config = cls.config_class.from_pretrained(str(path), local_files_only=True)
        with torch.device("meta"):
            return cls(config)
    except Exception as exc:  # noqa: BLE001 (config classes raise many kinds; all mean the same here)
        raise CheckpointError(f"{str(path / 'config.json')!r} does not describe a buildable {hf_class}: "
                              f"{' '.join(str(exc).split())}") from None


def _renamer(model):
    """(checkpoint key -> (model key, renamed by a converter), converter target names): transformers'
    own renaming on load. A converter may split one tensor into several or join several into one
    (Molmo2's fused qkv), so the weights it produces are left to the loading report (step 5).
    Identity, no converters, where this transformers version has no such API."""
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import WeightConverter, WeightRenaming, rename_source_key

        transforms = get_model_conversion_mapping(model)
        renamings = [t for t in transforms if isinstance(t, WeightRenaming)]
        converters = [t for t in transforms if isinstance(t, WeightConverter)]
        meta_sd = model.state_dict()

        def rename(key: str) -> tuple[str, bool]:
            new, pattern = rename_source_key(key, renamings, converters, model.base_model_prefix, meta_sd)
            return new, pattern is not None

        rename("probe")
        targets = set()
        for c in converters:
            names = c.target_patterns if isinstance(c.target_patterns, (list, tuple)) else [c.target_patterns]
            targets |= {str(n).replace("\\", "").lstrip("^").rstrip("$") for n in names}
        return rename, targets
    except (ImportError, TypeError, AttributeError):
        return (lambda key: (key, False)), set()


def _tied_targets(model) -> set[str]:
    """Weights that are tied to another one on load (a checkpoint may leave them out)."""
    tied = getattr(model, "all_tied_weights_keys", None)
    if isinstance(tied, dict) and tied:
        return set(tied)
    cfg = getattr(model.config, "get_text_config", lambda: model.config)()
    if getattr(cfg, "tie_word_embeddings", False) or getattr(model.config, "tie_word_embeddings", False):
        declared = getattr(model, "_tied_weights_keys", None) or {}
        return set(declared) if isinstance(declared, (dict, list, set, tuple)) else set()
    return set()


def check_weights(path: Path, hf_class: str) -> None:
    """Every tensor the architecture expects is in the checkpoint with the expected shape."""
    path = Path(path)
    tensors = checkpoint_tensors(path)
    model = meta_model(hf_class, path)
    expected = {k: list(v.shape) for k, v in model.state_dict().items()}
    rename, produced = _renamer(model)
    found: dict[str, tuple[list[int], str, str, bool]] = {}
    for key, (shape, file) in tensors.items():
        new, converted = rename(key)
        found[new] = (shape, file, key, converted)
    tied = _tied_targets(model)
    missing = [k for k in expected if k not in found and k not in tied and not any(t in k for t in produced)]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise CheckpointError(
            f"checkpoint {str(path)!r} lacks weight {missing[0]!r} (shape {expected[missing[0]]}){more}: the "
            f"architecture in config.json expects it and none of {sorted({f for _, f in tensors.values()})} holds "
            f"it; a missing weight is never initialised at random")
    for key, want in expected.items():
        if key in found and not found[key][3] and found[key][0] != want:
            shape, file, source, _ = found[key]
            raise CheckpointError(f"{str(path / file)!r}: tensor {source!r} has shape {shape}; config.json's "
                                  f"architecture expects {want} for {key!r}")


# ----------------------------------------------------------------------------------- tokenizer, processor
def check_processor_files(path: Path) -> None:
    """A real checkpoint carries its tokenizer and its image processor's config."""
    path = Path(path)
    if not any((path / f).is_file() for f in TOKENIZER_FILES):
        raise CheckpointError(f"checkpoint {str(path)!r} has no tokenizer files (expected {' or '.join(TOKENIZER_FILES)} "
                              f"beside config.json); the byte-level stand-in tokenizer is never used for a checkpoint")
    pre = path / PROCESSOR_FILE
    if not pre.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} has no {PROCESSOR_FILE} (the image mean/std the model "
                              f"was trained with)")
    d = _read_json(pre)
    if not isinstance(d, dict):
        raise CheckpointError(f"{str(pre)!r} holds a JSON {type(d).__name__}; expected a mapping")


def processor_mean_std(path: Path, default_mean_std) -> tuple:
    """(image_mean, image_std) from ``preprocessor_config.json`` (three finite numbers each)."""
    mean, std = default_mean_std
    pre = Path(path) / PROCESSOR_FILE
    if pre.is_file():
        d = json.loads(pre.read_text(encoding="utf-8"))
        mean, std = d.get("image_mean", mean), d.get("image_std", std)
    for name, v in (("image_mean", mean), ("image_std", std)):
        ok = isinstance(v, (list, tuple)) and len(v) == 3 and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)
        if not ok or (name == "image_std" and min(v) <= 0):
            raise CheckpointError(f"{str(pre)!r}: {name} {v!r} is not three finite numbers"
                                  f"{' > 0' if name == 'image_std' else ''}")
    return tuple(mean), tuple(std)


def load_tokenizer(path: Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"the tokenizer files of {str(path)!r} cannot be loaded: {exc}") from None


# ----------------------------------------------------------------------------------- the one load path
def check_checkpoint(path, model_type: str, hf_class: str, *, need_tokenizer: bool = True) -> Path:
    """Steps 1-4 of the module docstring (no weight is read); the checked path."""
    path = Path(path)
    read_config_json(path, model_type)
    if need_tokenizer:
        check_processor_files(path)
    check_weights(path, hf_class)
    return path


def load_checked(path, model_type: str, hf_class: str, default_mean_std, *, dtype=None, device="cpu",
                 tokenizer: Optional[Any] = None) -> tuple:
    """(eval model, tokenizer, image_mean, image_std) of a checked local checkpoint. ``tokenizer``:
    the caller's own (a tiny random-weight model's byte tokenizer); None reads the checkpoint's."""
    import torch
    import transformers

    path = check_checkpoint(path, model_type, hf_class, need_tokenizer=tokenizer is None)
    cls = getattr(transformers, hf_class)
    try:
        model, info = cls.from_pretrained(str(path), dtype=dtype or torch.float32, attn_implementation="sdpa",
                                          local_files_only=True, output_loading_info=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"transformers cannot load {str(path)!r}: {' '.join(str(exc).split())}") from None
    bad = {k: sorted(info.get(k) or ()) for k in ("missing_keys", "mismatched_keys")}
    if bad["missing_keys"] or bad["mismatched_keys"]:
        raise CheckpointError(f"checkpoint {str(path)!r}: transformers' loading report lists missing weights "
                              f"{bad['missing_keys'][:3]} / mismatched {bad['mismatched_keys'][:3]}; a weight is "
                              f"never initialised at random")
    mean, std = processor_mean_std(path, default_mean_std)
    if tokenizer is None:
        tokenizer = load_tokenizer(path)
    return model.to(device).eval(), tokenizer, mean, std
