"""Bad input to methods.load / generate: each a clear error naming what is allowed, raised before
any model work (nothing loaded for a bad checkpoint, nothing generated for a bad batch)."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

import methods
from methods.adapters import ByteTokenizer, LlavaOnevisionAdapter, Qwen2_5_VLAdapter


@pytest.fixture(scope="module")
def tiny():
    """A tiny LLaVA-OV adapter (the byte-level tokenizer is a test helper, passed explicitly)."""
    return LlavaOnevisionAdapter.tiny(seed=0)


@pytest.fixture(scope="module")
def model(tiny):
    return methods.load(tiny, frames=4)


def test_hf_model_without_tokenizer_is_refused(tiny):
    with pytest.raises(ValueError, match=r"needs its tokenizer: pass processor=AutoProcessor\.from_pretrained"):
        methods.load(tiny.model, "fastv")
    with pytest.raises(TypeError, match=r"use methods\.load\(model"):
        methods.apply_method(tiny.model, "fastv")


def test_explicit_byte_tokenizer_is_accepted_for_tests(tiny):
    m = methods.load(tiny.model, tokenizer=ByteTokenizer(tiny.text_config.vocab_size), frames=4)
    assert isinstance(m.tokenizer, ByteTokenizer)


def test_method_unsupported_by_the_family_names_the_supported_families():
    qwen = Qwen2_5_VLAdapter.tiny(seed=0)
    with pytest.raises(ValueError, match=r"'stts' does not run on .*qwen2\.5-vl.*llava-onevision, .*molmo2"):
        methods.load(qwen, "stts", topk=0.5)
    assert qwen.method is None                      # nothing attached


def test_unknown_method_and_unknown_options(tiny):
    with pytest.raises(ValueError, match=r"unknown method 'holitomm'; registered: .*holitom"):
        methods.load(tiny, "holitomm")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['inner_kk'\] for method 'holitom'; allowed: .*inner_k"):
        methods.load(tiny, "holitom", retention=0.1, inner_kk=2)
    with methods.load(tiny, "pdrop", retention=0.1) as pruned:  # PDrop owns its mapping: lam = r^(1/stages)
        stages = len(tiny.method.config.layers)
        assert tiny.method.config.lam == pytest.approx(0.1 ** (1 / stages))
        assert pruned.family == "llava-onevision"
    with pytest.raises(ValueError, match=r"fastv: give either retention or option keep"):
        methods.load(tiny, "fastv", retention=0.1, keep=0.5)
    with pytest.raises(ValueError, match=r"option k must be an int layer index in \[0, 28\]"):
        methods.load(tiny, "fastv", k=29)           # the papers' 28-layer notation, checked before attaching
    with pytest.raises(ValueError, match=r"given without a method"):
        methods.load(tiny, retention=0.1)
    assert tiny.method is None


def test_bad_checkpoints(tmp_path, checkpoints):
    with pytest.raises(ValueError, match=r"checkpoint directory .* does not exist"):
        methods.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"config\.json.* is missing or not JSON"):
        methods.load(tmp_path / "empty")
    llama = tmp_path / "llama"
    llama.mkdir()
    (llama / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ValueError, match=r"model_type 'llama', which no adapter supports; supported: "
                                         r"llava_onevision \(llava-onevision\), qwen2_5_vl \(qwen2\.5-vl\), molmo2 \(molmo2\)"):
        methods.load(llama)
    no_tok = tmp_path / "no_tokenizer"
    shutil.copytree(checkpoints["llava-onevision"], no_tok)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        (no_tok / f).unlink()
    with pytest.raises(ValueError, match=r"has no tokenizer files .*pass tokenizer="):
        methods.load(no_tok)
    with pytest.raises(ValueError, match=r"dtype 'fp8' is not supported; allowed: fp32"):
        methods.load(checkpoints["llava-onevision"], dtype="fp8")


def test_bad_batches(model, tmp_path):
    v = torch.rand(4, 3, 56, 56) * 2 - 1
    with pytest.raises(ValueError, match=r"2 videos but 1 questions: give one question per video"):
        model.generate([v, v], ["Q"])
    with pytest.raises(ValueError, match=r"empty batch"):
        model.generate([], [])
    with pytest.raises(ValueError, match=r"questions must be non-empty strings; not at index \[1\]"):
        model.generate([v, v], ["Q", ""])
    with pytest.raises(ValueError, match=r"video 1: file .*nope\.mp4' does not exist"):
        model.generate([v, tmp_path / "nope.mp4"], ["Q", "Q"])
    with pytest.raises(ValueError, match=r"video 0: frames of shape \(4, 3, 32, 32\).*expected normalised float \(F, 3, 56, 56\)"):
        model.generate([torch.rand(4, 3, 32, 32)], ["Q"])
    with pytest.raises(ValueError, match=r"videos must be a list"):
        model.generate(v, ["Q"])
    with pytest.raises(ValueError, match=r"batch_size must be an int >= 1"):
        model.generate([v], ["Q"], batch_size=0)


def test_an_undecodable_video_is_named(model, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(ValueError, match=r"cannot decode video .*broken\.mp4"):
        model.generate([bad], ["Q"])


def test_bad_generation_options(model):
    v = torch.rand(4, 3, 56, 56) * 2 - 1
    with pytest.raises(ValueError, match=r"unsupported generation option\(s\) \['repetition_penalty'\]; supported: "
                                         r"max_new_tokens, do_sample, temperature, top_p, top_k, num_beams"):
        model.generate([v], ["Q"], repetition_penalty=1.1)
    with pytest.raises(ValueError, match=r"num_beams=4 is not supported.*use num_beams=1"):
        model.generate([v], ["Q"], num_beams=4)
    with pytest.raises(ValueError, match=r"temperature must be > 0 when do_sample=True"):
        model.generate([v], ["Q"], do_sample=True, temperature=0)
    with pytest.raises(ValueError, match=r"max_new_tokens must be an int >= 1"):
        model.generate([v], ["Q"], max_new_tokens=0)
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\]"):
        model.generate([v], ["Q"], do_sample=True, top_p=1.5)


def test_load_arguments_that_do_not_apply(tiny):
    with pytest.raises(ValueError, match=r"device / dtype apply to a checkpoint directory"):
        methods.load(tiny.model, tokenizer=ByteTokenizer(1000), device="cuda")
    with pytest.raises(ValueError, match=r"an adapter carries its own tokenizer"):
        methods.load(tiny, tokenizer=ByteTokenizer(1000))
    with pytest.raises(TypeError, match=r"load needs a checkpoint directory, an HF model or an adapter, got int"):
        methods.load(3)
    with pytest.raises(ValueError, match=r"frames must be an int >= 1"):
        methods.load(tiny, frames=0)


def test_map_head_methods_on_llava(tiny):
    """Tango / FastVID read the SigLIP MAP head, which HF LLaVA checkpoints lack: a tiny tower gets a
    seeded random head with a warning, a full-size (so400m) tower is refused without map_head=."""
    from methods import api
    from methods.baselines import fastvid
    from methods.tango import SALIENCY_SIGNALS

    assert SALIENCY_SIGNALS[0] == fastvid.SALIENCY == "map_head_attn"
    assert set(api.MAP_HEAD_METHODS) == {"tango", "fastvid"}
    with pytest.warns(RuntimeWarning, match=r"pass map_head=.*seeded random head"):
        m = methods.load(tiny, "tango", retention=0.5)
    m.remove()
    big = LlavaOnevisionAdapter.from_config("llava-onevision-7b", device="meta")
    with pytest.raises(ValueError, match=r"SigLIP MAP head, which HF LLaVA checkpoints do not carry: pass map_head="):
        methods.load(big, "tango", retention=0.5)
    assert big.method is None
