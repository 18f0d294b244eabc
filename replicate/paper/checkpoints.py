"""Local checkpoints of the paper tier: the model (``paths.checkpoints.<name>``) and the SigLIP
so400m attention-pooling (MAP) head (``paths.checkpoints.siglip-so400m``). Nothing is downloaded.

The family is read from the checkpoint's own ``config.json`` (``model_type``), so a directory in the
HF layout is all a user points the config at. HF's LLaVA-OneVision / LLaVA-Video checkpoints carry
no MAP head (``vision_use_head=False``); Tango and FastVID take their saliency from it, so on a
full-size tower they need the head from the original SigLIP checkpoint and fail without it (never a
silent random head). A tiny tower (rehearsal, tests) without that path keeps the adapter's seeded
random head, and the cell says so. STTS runs with the scorer its Molmo2 checkpoint carries
(``attach_stts_scorer``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from costmodel.cli import UsageError

SIGLIP_KEY = "siglip-so400m"
#: methods whose saliency is the MAP-head probe attention (methods/tango.py, methods/fastvid.py:
#: SALIENCY = "map_head_attn"; tests hold this set equal to those modules)
MAP_HEAD_METHODS = frozenset({"tango", "fastvid"})
SO400M_HIDDEN = 1152
#: checkpoint name -> adapter setting (pooling, newlines, time prompt: methods/adapters/llava_onevision.py)
SETTING_BY_MODEL = {"llava-video-7b": "llava-video"}
_HEAD_PREFIXES = ("vision_model.head.", "head.")
_LN_PREFIXES = ("vision_model.post_layernorm.", "post_layernorm.")


class PaperInputError(UsageError):
    """A configured path is unusable; the message names the config key and the file."""


def checkpoint_key(name: str) -> str:
    return f"paths.checkpoints.{name}"


def checkpoint_dir(config: Mapping[str, Any], name: str) -> Path:
    """The checked directory of ``paths.checkpoints.<name>`` (exists, holds config.json)."""
    key = checkpoint_key(name)
    value = str(config.get("paths", {}).get("checkpoints", {}).get(name, "") or "").strip()
    if not value:
        raise PaperInputError(f"no checkpoint for {name}: config key {key} is empty")
    path = Path(value).expanduser()
    if not path.is_dir():
        raise PaperInputError(f"checkpoint directory {str(path)!r} (config key {key}) does not exist")
    if not (path / "config.json").is_file():
        raise PaperInputError(f"checkpoint directory {str(path)!r} (config key {key}) has no config.json "
                              f"(expected the HF layout: config.json + *.safetensors + processor files)")
    return path


def _config_json(path: Path, key: str) -> dict:
    """``path/config.json`` as a mapping (the checkpoint validator checks it whole at load time)."""
    try:
        cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PaperInputError(f"{str(path / 'config.json')!r} (config key {key}) is not readable JSON: {exc}") from exc
    if not isinstance(cfg, dict):
        raise PaperInputError(f"{str(path / 'config.json')!r} (config key {key}) holds a JSON {type(cfg).__name__}; "
                              f"expected a mapping with a model_type ({', '.join(FAMILIES)})")
    return cfg


def _model_type(path: Path, key: str) -> str:
    return str(_config_json(path, key).get("model_type"))


#: config.json ``model_type`` -> adapter class (module, name) of that family
FAMILIES = {"llava_onevision": ("methods.adapters.llava_onevision", "LlavaOnevisionAdapter"),
            "molmo2": ("methods.adapters.molmo2", "Molmo2VideoAdapter"),
            "qwen2_5_vl": ("methods.adapters.qwen2_5_vl", "Qwen2_5_VLAdapter")}


def resolve_device_map(config: Mapping[str, Any], device: str):
    """The device map a shard loads its model with: config ``paper.device_map`` ``auto`` (default)
    spreads the model over the visible GPUs when there are several (the 72B: ~146 GB in bf16, more
    than any one GPU; HoliTom's 72B script loads with device_map=auto on 8 GPUs), ``none`` keeps it on
    one device; a mapping is an explicit HF device map (module name -> device, "cpu" or "disk")."""
    chosen = config.get("paper", {}).get("device_map", "auto")
    if isinstance(chosen, Mapping):
        return dict(chosen)
    if chosen == "auto" and device == "cuda":
        import torch

        return "auto" if torch.cuda.device_count() > 1 else None
    return None


def load_mapped_llava(path: Path, key: str, setting: str, dtype, device_map, offload_dir, time_prompt=None):
    """A LLaVA-OV / LLaVA-Video adapter whose model is split by ``device_map`` (accelerate's hooks move
    each module's inputs to its device; methods/runtime/llm.py keeps the layer loop and KV cache right
    across devices). Needs ``accelerate`` (pip install -e ".[multigpu]")."""
    import importlib.util

    from transformers import LlavaOnevisionForConditionalGeneration

    from methods.adapters.checkpoint_check import check_checkpoint, load_tokenizer, processor_mean_std
    from methods.adapters.llava_onevision import LlavaOnevisionAdapter
    from methods.adapters.llava_onevision_loading import EXPECTED_MODEL_TYPE, SIGLIP_MEAN_STD

    if importlib.util.find_spec("accelerate") is None:
        raise PaperInputError(f"loading {str(path)!r} (config key {key}) with a device map needs the accelerate "
                              f"package: pip install -e \".[multigpu]\" (or set paper.device_map: none)")
    # checked whole first, as every load is (methods/adapters/checkpoint_check.py): config, headers,
    # every expected weight with its shape, tokenizer and processor files
    check_checkpoint(path, EXPECTED_MODEL_TYPE, "LlavaOnevisionForConditionalGeneration")
    model = LlavaOnevisionForConditionalGeneration.from_pretrained(
        str(path), dtype=dtype, attn_implementation="sdpa", local_files_only=True, device_map=device_map,
        offload_folder=str(offload_dir)).eval()
    tokenizer, (mean, std) = load_tokenizer(Path(path)), processor_mean_std(Path(path), SIGLIP_MEAN_STD)
    return LlavaOnevisionAdapter(model, setting, tokenizer=tokenizer, image_mean=mean, image_std=std,
                                 time_prompt=time_prompt)


def load_adapter(config: Mapping[str, Any], name: str, *, device: str = "cpu", dtype=None,
                 time_prompt: bool | None = None):
    """(adapter, info) for ``paths.checkpoints.<name>``; the family comes from config.json.
    ``time_prompt``: whether LLaVA-Video's time instruction precedes the prompt (the evaluation
    protocol's wrapper decides; None: the adapter setting's own). A device map (``resolve_device_map``)
    splits a LLaVA model over several devices."""
    import importlib

    import torch

    path = checkpoint_dir(config, name)
    key = checkpoint_key(name)
    model_type = _model_type(path, key)
    if model_type not in FAMILIES:
        raise PaperInputError(f"checkpoint {str(path)!r} (config key {key}) has model_type {model_type!r}; "
                              f"supported: {', '.join(FAMILIES)}")
    module, cls_name = FAMILIES[model_type]
    cls = getattr(importlib.import_module(module), cls_name)
    info = {"checkpoint_dir": str(path), "model_type": model_type}
    kwargs = {"dtype": dtype or torch.float32, "device": device}
    if model_type == "llava_onevision":
        info["setting"] = kwargs["setting"] = SETTING_BY_MODEL.get(name, "llava-onevision")
        if time_prompt is not None:
            info["time_prompt"] = kwargs["time_prompt"] = bool(time_prompt)
    device_map = resolve_device_map(config, device)
    try:
        if device_map is not None:
            if model_type != "llava_onevision":
                raise PaperInputError(f"config key paper.device_map: a device map is supported for LLaVA "
                                      f"checkpoints only; {key} is {model_type!r} (set paper.device_map: none)")
            import tempfile

            info["device_map"] = device_map if isinstance(device_map, str) else "explicit"
            offload = config.get("paper", {}).get("offload_dir") or tempfile.mkdtemp(prefix="offload-")
            return load_mapped_llava(path, key, kwargs["setting"], kwargs["dtype"], device_map, offload,
                                     kwargs.get("time_prompt")), info
        return cls.from_pretrained(path, **kwargs), info
    except (OSError, ValueError) as exc:
        raise PaperInputError(f"cannot load checkpoint {str(path)!r} (config key {key}): {exc}") from exc


def attach_stts_scorer(adapter, method, name: str) -> dict[str, Any]:
    """Give an STTS method on a Molmo2 checkpoint the scorer that checkpoint carries (the released
    Lite-30/50, or one written by ``replicate.stts_train --backbone molmo2``); a Molmo2 checkpoint
    without one fails naming the key (never a silent random scorer). Returns what was done."""
    from methods.adapters.molmo2_loading import STTS_SCORER_PREFIX
    from methods.stts_method import STTS

    if not isinstance(method, STTS) or not hasattr(adapter, "stts_scorer_state"):
        return {}
    if method.config.prune_method != "scorer":
        return {"stts_scorer": f"not used by rule {method.config.prune_method!r}"}
    state = adapter.stts_scorer_state()
    if state is None:
        raise PaperInputError(
            f"checkpoint {adapter.checkpoint_dir!r} (config key {checkpoint_key(name)}) carries no STTS scorer "
            f"(no {STTS_SCORER_PREFIX}* tensors): point the key at an STTS checkpoint (Molmo2-4B-Lite-30/50, "
            f"or one trained with python -m replicate.stts_train --backbone molmo2)")
    scorer = method.scorer(adapter)
    try:
        scorer.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise PaperInputError(f"STTS scorer in {adapter.checkpoint_dir!r} (config key {checkpoint_key(name)}) "
                              f"does not fit this model's ViT: {exc}") from exc
    method.set_scorer(scorer.eval())
    return {"stts_scorer": f"trained scorer from {adapter.checkpoint_dir} ({STTS_SCORER_PREFIX}*)",
            "trained_scorer": True}


def attach_map_head(adapter, config: Mapping[str, Any], method: str) -> dict[str, Any]:
    """Give a MAP-head method the real SigLIP head; returns what was done (for the results)."""
    if method not in MAP_HEAD_METHODS:
        return {"map_head": "not used by this method"}
    if not getattr(adapter, "has_map_head", True):  # Qwen2.5-VL: Tango uses its tower's global-query attention
        return {"map_head": f"not used on {type(adapter).__name__} (no MAP head in its tower)"}
    vision = adapter.vision_config
    value = str(config.get("paths", {}).get("checkpoints", {}).get(SIGLIP_KEY, "") or "").strip()
    if not value:
        if int(vision.hidden_size) == SO400M_HIDDEN:
            raise PaperInputError(
                f"method {method!r} takes its saliency from the SigLIP so400m MAP head, which HF LLaVA "
                f"checkpoints do not carry: set config key {checkpoint_key(SIGLIP_KEY)} to a local "
                f"google/siglip-so400m-patch14-384 checkpoint")
        return {"map_head": f"seeded random head (tiny tower, hidden {vision.hidden_size}; no "
                            f"{checkpoint_key(SIGLIP_KEY)}): not SigLIP's saliency"}
    head, post_ln, source = load_map_head(config, vision)
    tower = adapter.model.model.vision_tower
    # The adapter's map_head() returns this head; post_layernorm only feeds the head (the features
    # are the pre-norm hidden state), so loading SigLIP's norm changes nothing else.
    adapter.set_map_head(head)
    tower.post_layernorm.load_state_dict(post_ln)
    return {"map_head": f"SigLIP MAP head + post_layernorm from {source}"}


def _safetensor_files(path: Path, key: str) -> list[Path]:
    """The checkpoint's safetensors files, each header readable and no tensor beyond its file's end."""
    from methods.adapters.checkpoint_check import CheckpointError, read_safetensors_header

    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise PaperInputError(f"SigLIP checkpoint {str(path)!r} (config key {key}) has no *.safetensors file")
    for f in files:
        try:
            read_safetensors_header(f)
        except CheckpointError as exc:
            raise PaperInputError(f"SigLIP checkpoint (config key {key}): {exc}") from None
    return files


def _read_prefixed(files: list[Path], prefixes) -> tuple[dict[str, Any], Path | None]:
    from safetensors import safe_open

    for f in files:
        with safe_open(str(f), framework="pt") as fh:
            for prefix in prefixes:
                names = [n for n in fh.keys() if n.startswith(prefix)]
                if names:
                    return {n[len(prefix):]: fh.get_tensor(n) for n in names}, f
    return {}, None


def load_map_head(config: Mapping[str, Any], tower_config):
    """(SiglipMultiheadAttentionPoolingHead, post_layernorm state, source) from the SigLIP checkpoint."""
    from transformers import SiglipVisionConfig
    from transformers.models.siglip.modeling_siglip import SiglipMultiheadAttentionPoolingHead

    key = checkpoint_key(SIGLIP_KEY)
    path = checkpoint_dir(config, SIGLIP_KEY)
    cfg = _config_json(path, key)
    vcfg = cfg.get("vision_config", cfg) if cfg.get("model_type") == "siglip" else cfg
    if not isinstance(vcfg, dict) or cfg.get("model_type") not in ("siglip", "siglip_vision_model"):
        raise PaperInputError(f"SigLIP checkpoint {str(path / 'config.json')!r} (config key {key}) has model_type "
                              f"{cfg.get('model_type')!r}; expected 'siglip' or 'siglip_vision_model'")
    for dim in ("hidden_size", "num_attention_heads", "intermediate_size"):
        got = vcfg.get(dim)
        if isinstance(got, bool) or not isinstance(got, int) or got != int(getattr(tower_config, dim)):
            raise PaperInputError(f"SigLIP checkpoint {str(path / 'config.json')!r} (config key {key}) has "
                                  f"{dim}={vcfg.get(dim)}, the model's vision tower {getattr(tower_config, dim)}")
    files = _safetensor_files(path, key)
    head_state, head_file = _read_prefixed(files, _HEAD_PREFIXES)
    ln_state, _ = _read_prefixed(files, _LN_PREFIXES)
    if not head_state or not ln_state:
        raise PaperInputError(f"SigLIP checkpoint {str(path)!r} (config key {key}) has no "
                              f"vision_model.head.* / vision_model.post_layernorm.* tensors in "
                              f"{', '.join(f.name for f in files)}")
    fields = {k: v for k, v in vcfg.items() if k in SiglipVisionConfig().to_dict() and k != "model_type"}
    head = SiglipMultiheadAttentionPoolingHead(SiglipVisionConfig(**fields))
    try:
        head.load_state_dict(head_state, strict=True)
    except RuntimeError as exc:
        raise PaperInputError(f"MAP head in {str(head_file)!r} (config key {key}) does not fit: {exc}") from exc
    return head, ln_state, str(path)
