"""One shard of a cell in process: the JSONL it writes, resuming, bad paths, the MAP head, scoring."""
from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pytest

from replicate.paper.cells import Cell
from replicate.paper.checkpoints import PaperInputError, attach_map_head
from replicate.paper.shard import read_shard, run_shard, summarise_cell

SAMPLE_FIELDS = {"sample_id", "question_id", "options", "prediction", "answer", "correct", "visual_tokens_kept",
                 "timing"}


def cell(method="vanilla", benchmark="videomme", retention=None, options=(), frames=8):
    return Cell("llava-onevision-7b", "llava-onevision-7b", frames, method, retention, options, benchmark, benchmark)


def test_shards_write_predictions_and_the_summary_scores_them(paper_config, tmp_path):
    c = cell("holitom", retention=0.5, options=(("inner_k", 18), ("inner_r", 0.5)))
    paths = [tmp_path / c.shard_path(i, 2) for i in range(2)]
    heads = [run_shard(c, i, 2, paper_config(), p, progress=False) for i, p in enumerate(paths)]
    assert [h["status"] for h in heads] == ["ok", "ok"], heads
    rows = [r for p in paths for r in read_shard(p)[1]]
    assert len(rows) == 3 and all(SAMPLE_FIELDS <= set(r) for r in rows)
    assert all(0 < r["visual_tokens_kept"] < 8 * 9 for r in rows)  # pruned below 8 frames x 9 tokens
    assert heads[0]["options"]["scaled"]["inner_k"] == [18, 3]     # 28 -> 4 layers, recorded
    summary = summarise_cell(c, paths)
    assert summary["status"] == "ok" and summary["n"] == 3
    assert summary["accuracy"] == pytest.approx(100 * sum(r["correct"] for r in rows) / 3)


def test_a_finished_shard_is_never_rewritten_and_an_error_shard_is_retried(paper_config, tmp_path):
    c = cell()
    out = tmp_path / c.shard_path(0, 1)
    run_shard(c, 0, 1, paper_config(), out, progress=False)
    before = (out.stat().st_mtime_ns, out.read_bytes())
    run_shard(c, 0, 1, paper_config(), out, progress=False)
    assert (out.stat().st_mtime_ns, out.read_bytes()) == before
    bad = paper_config()
    bad["paths"]["datasets"]["videomme"] = str(tmp_path / "nowhere")
    err = tmp_path / "err" / c.shard_path(0, 1)
    assert run_shard(c, 0, 1, bad, err, progress=False)["status"] == "error"
    assert run_shard(c, 0, 1, paper_config(), err, progress=False)["status"] == "ok"


def test_generate_mode_keeps_the_text_and_parses_the_letter(paper_config, tmp_path):
    from replicate.benchmarks.prompts import parse_letter

    c = cell(benchmark="egoschema")
    out = tmp_path / "g.jsonl"
    assert run_shard(c, 0, 1, paper_config(answer="generate", max_new_tokens=3), out, progress=False)["answer_mode"] == "generate"
    for r in read_shard(out)[1]:
        assert isinstance(r["prediction"], str)
        assert r["pred_index"] == parse_letter(r["prediction"], len(r["options"]))


def _broken(paper_inputs, tmp_path, what):
    """A config whose checkpoint or dataset is broken in one way; returns (config, file named)."""
    ckpt, data = paper_inputs["checkpoint"], paper_inputs["datasets"]["videomme"]
    if what == "missing-dir":
        return {"checkpoints": {"llava-onevision-7b": str(tmp_path / "gone")}}, str(tmp_path / "gone")
    if what == "no-config-json":
        d = tmp_path / "empty-ckpt"
        d.mkdir()
        return {"checkpoints": {"llava-onevision-7b": str(d)}}, str(d)
    copy = tmp_path / "vmme"
    shutil.copytree(data, copy)
    if what == "no-annotation":
        shutil.rmtree(copy / "videomme")
        return {"datasets": {"videomme": str(copy)}}, str(copy)
    video = copy / "data" / "vid000.mp4"
    video.write_bytes(b"not an mp4 at all")
    return {"datasets": {"videomme": str(copy)}}, str(video)


@pytest.mark.parametrize("what, key", [("missing-dir", "paths.checkpoints.llava-onevision-7b"),
                                       ("no-config-json", "paths.checkpoints.llava-onevision-7b"),
                                       ("no-annotation", "paths.datasets.videomme"),
                                       ("unreadable-video", "paths.datasets.videomme")])
def test_bad_path_names_key_and_file_and_stops_only_that_cell(paper_inputs, paper_config, tmp_path, what, key):
    cfg = paper_config()
    override, named = _broken(paper_inputs, tmp_path, what)
    for section, values in override.items():
        cfg["paths"][section].update(values)
    c = cell()
    head = run_shard(c, 0, 1, cfg, tmp_path / "out.jsonl", progress=False)
    assert head["status"] == "error"
    assert key in head["reason"] and named in head["reason"], head["reason"]
    if key.startswith("paths.datasets"):  # a cell on another benchmark of the same run is unaffected
        other = cell(benchmark="egoschema")
        assert run_shard(other, 0, 1, cfg, tmp_path / "ok.jsonl", progress=False)["status"] == "ok"
    assert summarise_cell(c, [tmp_path / "out.jsonl"])["status"] == "error"


def test_map_head_loaded_from_the_siglip_checkpoint_for_tango(paper_config, tmp_path):
    c = cell("tango", retention=0.25, options=(("tau", 0.8),))
    head = run_shard(c, 0, 1, paper_config(), tmp_path / "t.jsonl", progress=False)
    assert head["status"] == "ok" and head["map_head"].startswith("SigLIP MAP head + post_layernorm from ")


def test_map_head_from_the_checkpoint_equals_the_siglip_head(paper_inputs, paper_config):
    import torch
    from safetensors.torch import load_file

    from replicate.paper.checkpoints import load_adapter

    adapter, _ = load_adapter(paper_config(), "llava-onevision-7b")
    attach_map_head(adapter, paper_config(), "tango")
    stored = load_file(f"{paper_inputs['siglip']}/model.safetensors")
    assert torch.equal(adapter.map_head().probe, stored["vision_model.head.probe"])
    assert torch.equal(adapter.model.model.vision_tower.post_layernorm.weight,
                       stored["vision_model.post_layernorm.weight"])


def test_full_size_tower_without_siglip_path_fails_naming_the_key():
    fake = SimpleNamespace(vision_config=SimpleNamespace(hidden_size=1152))
    with pytest.raises(PaperInputError, match=r"paths\.checkpoints\.siglip-so400m"):
        attach_map_head(fake, {"paths": {"checkpoints": {}}}, "tango")
    tiny = SimpleNamespace(vision_config=SimpleNamespace(hidden_size=64))
    assert "seeded random head" in attach_map_head(tiny, {"paths": {"checkpoints": {}}}, "fastvid")["map_head"]
    assert attach_map_head(fake, {}, "holitom")["map_head"] == "not used by this method"


def test_map_head_methods_match_the_methods_saliency(repo_root):
    """Modules of methods/ that take their saliency from the MAP head are exactly MAP_HEAD_METHODS."""
    import importlib

    from replicate.paper.checkpoints import MAP_HEAD_METHODS

    users = set()
    for path in sorted((repo_root / "methods").rglob("*.py")):
        rel = path.relative_to(repo_root).with_suffix("")
        if path.stem == "__main__":
            continue
        module = importlib.import_module(".".join(rel.parts))
        # one signal (SALIENCY), or the signals in order of preference (SALIENCY_SIGNALS)
        signals = getattr(module, "SALIENCY_SIGNALS", None)
        if not isinstance(signals, tuple):  # methods.types.SALIENCY_SIGNALS is the catalogue of all of them
            signals = (getattr(module, "SALIENCY", None),)
        if "map_head_attn" in signals:
            users.add(path.stem)
    assert users == set(MAP_HEAD_METHODS)


def test_load_adapter_picks_the_family_from_config_json(tmp_path):
    """A Qwen2.5-VL checkpoint in the HF layout loads as the Qwen adapter; an unknown model_type is
    refused naming the config key and the supported families."""
    from methods.adapters.qwen2_5_vl import Qwen2_5_VLAdapter
    from replicate.paper.checkpoints import PaperInputError, load_adapter

    from replicate.paper.rehearsal import byte_tokenizer

    Qwen2_5_VLAdapter.tiny(seed=0).save_pretrained(tmp_path / "qwen")
    byte_tokenizer().save_pretrained(tmp_path / "qwen")  # a checkpoint carries its tokenizer files
    cfg = {"paths": {"checkpoints": {"qwen2.5-vl-7b": str(tmp_path / "qwen"), "other": str(tmp_path / "other")}}}
    adapter, info = load_adapter(cfg, "qwen2.5-vl-7b")
    assert isinstance(adapter, Qwen2_5_VLAdapter) and info["model_type"] == "qwen2_5_vl"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(PaperInputError, match=r"paths\.checkpoints\.other.*'bert'.*llava_onevision, molmo2, qwen2_5_vl"):
        load_adapter(cfg, "other")


def test_a_tower_without_map_head_needs_no_siglip_path():
    from replicate.paper.checkpoints import attach_map_head

    fake = SimpleNamespace(vision_config=SimpleNamespace(hidden_size=1152), has_map_head=False)
    assert "not used" in attach_map_head(fake, {"paths": {"checkpoints": {}}}, "tango")["map_head"]
