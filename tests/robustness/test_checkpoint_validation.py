"""Class 1 of issue 27: a damaged real checkpoint never gives a result.

Every case starts from a tiny LLaVA-OneVision written the project's own way (the rehearsal's
checkpoint: sharded safetensors + index, tokenizer and processor files), breaks one thing, and
loads it the way a cell does (``LlavaOnevisionAdapter.from_pretrained`` through
``methods.adapters.checkpoint_check``, or the paper tier's ``load_adapter``). The error must name
the file and what was expected; no weight is ever initialised at random.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from methods.adapters import ByteTokenizer, LlavaOnevisionAdapter
from methods.adapters.checkpoint_check import CheckpointError, check_checkpoint, checkpoint_tensors

INDEX = "model.safetensors.index.json"


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    from replicate.paper.rehearsal import write_llava_checkpoint

    return write_llava_checkpoint(tmp_path_factory.mktemp("ckpt") / "llava-onevision-7b", seed=0)


@pytest.fixture
def ckpt(good, tmp_path) -> Path:
    """A private copy of the good checkpoint, to break."""
    return Path(shutil.copytree(good, tmp_path / "ckpt"))


def _index(path: Path) -> dict:
    return json.loads((path / INDEX).read_text())


def _shard_of(path: Path, fragment: str) -> tuple[str, str]:
    """(tensor name, shard file) of the first tensor whose name holds ``fragment``."""
    name = next(k for k in _index(path)["weight_map"] if fragment in k)
    return name, _index(path)["weight_map"][name]


def _rewrite_shard(path: Path, shard: str, edit) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path / shard))
    edit(tensors)
    save_file(tensors, str(path / shard), metadata={"format": "pt"})


def _drop_tensor(path: Path, fragment: str) -> str:
    name, shard = _shard_of(path, fragment)
    _rewrite_shard(path, shard, lambda t: t.pop(name))
    index = _index(path)
    del index["weight_map"][name]
    (path / INDEX).write_text(json.dumps(index))
    return name


def _load(path: Path):
    return LlavaOnevisionAdapter.from_pretrained(path)


# ---------------------------------------------------------------------------------- the good one loads
def test_the_rehearsal_checkpoint_loads_with_its_own_tokenizer(good):
    adapter = _load(good)
    assert not isinstance(adapter.tokenizer, ByteTokenizer)  # its tokenizer.json, never the stand-in
    assert adapter.image_mean == (0.5, 0.5, 0.5)
    assert len(checkpoint_tensors(good)) == len(adapter.model.state_dict())


# ---------------------------------------------------------------------------------- weights
@pytest.mark.parametrize("fragment", ["layers.1.mlp.down_proj", "vision_tower", "multi_modal_projector",
                                      "image_newline", "embed_tokens"])
def test_a_missing_weight_is_named_never_random(ckpt, fragment):
    _drop_tensor(ckpt, fragment)
    with pytest.raises(CheckpointError, match=r"lacks weight .*never initialised at random") as exc:
        _load(ckpt)
    assert str(ckpt) in str(exc.value)


def test_a_missing_weight_is_found_before_any_weight_is_read(ckpt, monkeypatch):
    """check_checkpoint reads headers only: transformers' from_pretrained is never reached."""
    import transformers

    _drop_tensor(ckpt, "layers.1.mlp.down_proj")
    monkeypatch.setattr(transformers.LlavaOnevisionForConditionalGeneration, "from_pretrained",
                        classmethod(lambda *a, **k: pytest.fail("weights were loaded")))
    with pytest.raises(CheckpointError, match="down_proj"):
        _load(ckpt)


@pytest.mark.parametrize("key,value", [(("text_config", "intermediate_size"), 300),
                                       (("text_config", "hidden_size"), 96),
                                       (("vision_config", "intermediate_size"), 100)])
def test_sizes_in_config_that_do_not_match_the_weights(ckpt, key, value):
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg[key[0]][key[1]] = value
    (ckpt / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"has shape \[.*expects \["):
        _load(ckpt)


def test_a_tensor_of_the_wrong_shape_in_the_file(ckpt):
    import torch

    name, shard = _shard_of(ckpt, "layers.0.mlp.gate_proj")
    _rewrite_shard(ckpt, shard, lambda t: t.__setitem__(name, torch.zeros(3, 3)))
    with pytest.raises(CheckpointError, match=rf"{shard}.*{name}.*shape \[3, 3\]"):
        _load(ckpt)


# ---------------------------------------------------------------------------------- safetensors files
@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_a_truncated_shard_is_named(ckpt, keep):
    _, shard = _shard_of(ckpt, "layers.1.mlp")
    data = (ckpt / shard).read_bytes()
    (ckpt / shard).write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(CheckpointError, match=rf"{shard}.*truncated"):
        _load(ckpt)


@pytest.mark.parametrize("content,needle", [(b"", "truncated"), (b"\x05\x00\x00", "truncated"),
                                            ((10 ** 12).to_bytes(8, "little"), "header length"),
                                            ((4).to_bytes(8, "little") + b"{{{{", "not JSON"),
                                            ((2).to_bytes(8, "little") + b"[]", "not a mapping")])
def test_a_shard_whose_header_is_damaged(ckpt, content, needle):
    _, shard = _shard_of(ckpt, "layers.0")
    (ckpt / shard).write_bytes(content)
    with pytest.raises(CheckpointError, match=needle):
        _load(ckpt)


def test_a_header_whose_byte_count_does_not_fit_the_dtype(ckpt):
    _, shard = _shard_of(ckpt, "layers.0")
    raw = (ckpt / shard).read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    name = next(k for k in header if k != "__metadata__")
    header[name]["dtype"] = "F16" if header[name]["dtype"] != "F16" else "F32"
    blob = json.dumps(header, separators=(",", ":")).encode().ljust(n)
    if len(blob) != n:
        pytest.skip("header grew")
    (ckpt / shard).write_bytes(raw[:8] + blob + raw[8 + n:])
    with pytest.raises(CheckpointError, match=rf"{name}.*bytes; its shape needs"):
        _load(ckpt)


def test_the_index_names_a_shard_that_is_not_there(ckpt):
    _, shard = _shard_of(ckpt, "layers.1")
    (ckpt / shard).unlink()
    with pytest.raises(CheckpointError, match=rf"lists shard '{shard}'.*not in"):
        _load(ckpt)


@pytest.mark.parametrize("index", ["[1, 2]", '{"weight_map": [1]}', "not json", '{"weight_map": {"a": 3}}'])
def test_a_damaged_index(ckpt, index):
    (ckpt / INDEX).write_text(index)
    with pytest.raises(CheckpointError, match=INDEX.replace(".", r"\.")):
        _load(ckpt)


def test_the_index_puts_a_tensor_in_the_wrong_shard(ckpt):
    index = _index(ckpt)
    name, shard = _shard_of(ckpt, "layers.0.mlp.up_proj")
    other = next(v for v in index["weight_map"].values() if v != shard)
    index["weight_map"][name] = other
    (ckpt / INDEX).write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match=rf"lists tensor '{name}' in '{other}', which does not hold it"):
        _load(ckpt)


def test_no_safetensors_at_all(ckpt):
    for f in ckpt.glob("*.safetensors"):
        f.rename(f.with_suffix(".bin"))
    (ckpt / INDEX).unlink()
    with pytest.raises(CheckpointError, match=r"no \*\.safetensors weights.*\.bin"):
        _load(ckpt)


# ---------------------------------------------------------------------------------- config.json
@pytest.mark.parametrize("content,needle", [("[1, 2]", "holds a JSON list"), ('"llava"', "holds a JSON str"),
                                            ("{not json", "not readable JSON"),
                                            ('{"model_type": "qwen2"}', "model_type 'qwen2'; expected 'llava_onevision'"),
                                            ("{}", "model_type None")])
def test_a_damaged_config_json(ckpt, content, needle):
    (ckpt / "config.json").write_text(content)
    with pytest.raises(CheckpointError, match=needle):
        _load(ckpt)


def test_a_config_json_that_builds_no_model(ckpt):
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg["text_config"]["num_attention_heads"] = "four"
    (ckpt / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="config.json"):
        _load(ckpt)


# ---------------------------------------------------------------------------------- tokenizer, processor
def test_no_tokenizer_files_is_refused_never_the_byte_tokenizer(ckpt):
    for f in ("tokenizer.json", "tokenizer_config.json"):
        (ckpt / f).unlink(missing_ok=True)
    with pytest.raises(CheckpointError, match="no tokenizer files.*byte-level stand-in tokenizer is never used"):
        _load(ckpt)
    # a random-weight model's caller may still pass its byte tokenizer explicitly
    adapter = LlavaOnevisionAdapter.from_pretrained(ckpt, tokenizer=ByteTokenizer(1000))
    assert isinstance(adapter.tokenizer, ByteTokenizer)


def test_methods_load_refuses_missing_tokenizer_files_and_takes_a_given_tokenizer(ckpt):
    """The user API (methods.load, python -m methods.predict) on the same checkpoint: refused without
    tokenizer files; with the caller's tokenizer the checkpoint's weights load and that tokenizer is
    used (the adapter's check does not ask for files the caller replaced)."""
    import methods

    for f in ("tokenizer.json", "tokenizer_config.json"):
        (ckpt / f).unlink(missing_ok=True)
    with pytest.raises(ValueError, match="no tokenizer files"):
        methods.load(ckpt)
    given = ByteTokenizer(1000)
    model = methods.load(ckpt, tokenizer=given, frames=4)
    assert model.tokenizer is given and model.family == "llava-onevision"


@pytest.mark.parametrize("retention", [float("nan"), 0.0, 1.5, None])
def test_methods_load_refuses_a_bad_retention_before_reading_the_checkpoint(tmp_path, retention):
    """A NaN / out-of-range / missing retention is named before the checkpoint is looked at (the
    directory here does not exist: the retention error comes first)."""
    import methods

    with pytest.raises(ValueError, match=r"retention in \(0, 1\]|retention must be in \(0, 1\]"):
        methods.load(tmp_path / "not-read", "holitom", retention)


def test_a_damaged_tokenizer_file_is_named(ckpt):
    (ckpt / "tokenizer.json").write_text("{\"version\": ")
    with pytest.raises(CheckpointError, match="tokenizer files of .* cannot be loaded"):
        _load(ckpt)


@pytest.mark.parametrize("pre,needle", [(None, "no preprocessor_config.json"), ("[]", "holds a JSON list"),
                                        ('{"image_mean": [0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}', "image_mean"),
                                        ('{"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0, 0.5]}', "image_std"),
                                        ('{"image_mean": [0.5, NaN, 0.5]}', "image_mean")])
def test_a_missing_or_damaged_processor_file(ckpt, pre, needle):
    f = ckpt / "preprocessor_config.json"
    f.unlink() if pre is None else f.write_text(pre)
    with pytest.raises(CheckpointError, match=needle):
        _load(ckpt)


# ---------------------------------------------------------------------------------- the paper tier's view
def test_the_paper_tier_names_the_config_key_and_the_tensor(ckpt):
    from replicate.paper.checkpoints import PaperInputError, load_adapter

    _drop_tensor(ckpt, "layers.1.mlp.down_proj")
    cfg = {"paths": {"checkpoints": {"llava-onevision-7b": str(ckpt)}}}
    with pytest.raises(PaperInputError, match=r"config key paths\.checkpoints\.llava-onevision-7b.*down_proj"):
        load_adapter(cfg, "llava-onevision-7b")


@pytest.mark.parametrize("content,needle", [("[1]", "holds a JSON list"), ('{"model_type": "bert"}', "'bert'"),
                                            ("{oops", "not readable JSON")])
def test_the_workflow_refuses_a_bad_config_json_before_any_job(ckpt, content, needle):
    from replicate.configuration import ConfigError, check_all, deep_merge, load_config

    (ckpt / "config.json").write_text(content)
    cfg = deep_merge(load_config(), {"paths": {"checkpoints": {"llava-onevision-7b": str(ckpt)}}})
    with pytest.raises(ConfigError, match=rf"paths\.checkpoints\.llava-onevision-7b.*{needle}"):
        check_all(cfg)


def test_a_truncated_siglip_checkpoint_is_named(tmp_path):
    from replicate.paper.checkpoints import PaperInputError, load_map_head
    from replicate.paper.rehearsal import TINY_VISION, write_siglip_checkpoint

    sig = write_siglip_checkpoint(tmp_path / "siglip")
    f = next(sig.glob("*.safetensors"))
    f.write_bytes(f.read_bytes()[:1000])
    tower = type("V", (), {k: v for k, v in TINY_VISION.items()})
    with pytest.raises(PaperInputError, match=r"siglip-so400m.*truncated"):
        load_map_head({"paths": {"checkpoints": {"siglip-so400m": str(sig)}}}, tower)


def test_molmo2_fused_weight_missing_is_caught_by_the_loading_report(tmp_path):
    """Molmo2's fused qkv is split on load by a transformers converter: the meta-device comparison
    leaves it to the loading report, which must still refuse the checkpoint."""
    from methods.adapters.molmo2 import Molmo2VideoAdapter
    from replicate.paper.rehearsal import write_molmo2_checkpoint

    path = write_molmo2_checkpoint(tmp_path / "molmo2-4b", seed=0)
    name, shard = _shard_of(path, "att_proj")
    _rewrite_shard(path, shard, lambda t: t.pop(name))
    index = _index(path)
    del index["weight_map"][name]
    (path / INDEX).write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match="missing weights|lacks weight"):
        Molmo2VideoAdapter.from_pretrained(path)


def test_check_checkpoint_passes_the_good_one_without_loading(good):
    assert check_checkpoint(good, "llava_onevision", "LlavaOnevisionForConditionalGeneration") == good


@pytest.mark.parametrize("kwargs,needle", [
    ({"method": "holitom", "retention": "nan"}, r"retention must be a number in \(0, 1\], got 'nan'"),
    ({"method": "holitom", "retention": "1.5"}, r"retention must be in \(0, 1\], got 1\.5"),
    ({"frames": "0"}, r"frames must be an int >= 1, got 0"),
    ({"frames": "eight"}, r"frames must be an int >= 1, got 'eight'"),
    ({"max_new_tokens": "1.5"}, r"max_new_tokens must be an int >= 1, got '1\.5'"),
])
def test_lmms_eval_model_args_are_refused_by_name_before_loading(tmp_path, kwargs, needle):
    """lmms-eval hands --model_args over as text: a bad count or retention is named, not a raw int()
    error, and before the checkpoint (a folder that is not one here) is read."""
    from methods import lmms_eval_model as lm

    (tmp_path / "ckpt").mkdir()
    with pytest.raises(ValueError, match=needle):
        lm.VideoPruneCore(pretrained=str(tmp_path / "ckpt"), **kwargs)
