"""The accuracy harness on a smoke-trained checkpoint: unpruned it is replicate.synthvqa.evaluate."""
import pytest
import torch

from replicate.harness.accuracy import evaluate_adapter, load_checkpoint, run_accuracy_cell


def test_unpruned_logits_equal_synthvqa_evaluate(smoke_model_dir):
    from methods.registry import get_method
    from replicate.synthvqa.evaluate import evaluate, option_logits
    from replicate.synthvqa.data import make_split
    from replicate.synthvqa.train import load_checkpoint as load_tiny

    adapter, data = load_checkpoint(smoke_model_dir)
    model, tok, _ = load_tiny(smoke_model_dir)
    samples = make_split("test", 6, 0, data)
    ref = option_logits(model, tok, samples)
    ours = evaluate_adapter(adapter, None, samples, adapter.tokenizer, progress=False)
    van = evaluate_adapter(adapter, get_method("vanilla"), samples, adapter.tokenizer, progress=False)
    assert torch.allclose(ours["logits"], ref, atol=1e-4, rtol=1e-4), (ours["logits"] - ref).abs().max()
    assert torch.equal(van["logits"], ours["logits"])
    assert ours["accuracy"] == pytest.approx(evaluate(model, tok, samples)["accuracy"])
    assert ours["mean_visual_tokens_llm"] == data.frames * adapter.tokens_per_frame


def test_accuracy_cell_fields(smoke_model_dir):
    r = run_accuracy_cell(smoke_model_dir, "holitom", None, 0.10, n_samples=4, progress=False)
    assert r["status"] == "ok" and r["dataset"] == "SynthVideoQA-test"
    assert r["options"]["paper"]["inner_k"] == 18
    L = r["llm_layers"]
    assert r["options"]["applied"]["inner_k"] == max(1, min(L - 1, int(18 * L / 28 + 0.5)))
    assert 0 <= r["accuracy"] <= 1 and r["n"] == 4 and sum(r["per_family_n"].values()) == 4
    assert r["mean_visual_tokens_llm"] < r["vanilla_visual_tokens"]
    s = r["schedule_first_sample"]
    assert s["llm_visual"][0] == pytest.approx(r["mean_visual_tokens_llm"], abs=r["vanilla_visual_tokens"])
    assert 0 < r["paper_macs"] and r["paper_flops"] == 2 * r["paper_macs"] and r["exact_flops"] > r["paper_flops"]
    assert r["perf_kept_pct"] is None and r["provenance"]["config_hash"]
    v = run_accuracy_cell(smoke_model_dir, "vanilla", None, None, n_samples=4, progress=False)
    assert v["paper_macs"] > r["paper_macs"]


def test_cells_that_cannot_run_say_why(smoke_model_dir):
    d = run_accuracy_cell(smoke_model_dir, "dycoke", None, 0.10, n_samples=2, progress=False)
    assert d["status"] == "not-applicable" and "retention must be >=" in d["reason"] and d["accuracy"] is None
    v = run_accuracy_cell(smoke_model_dir, "vanilla", None, 0.5, n_samples=2, progress=False)
    assert v["status"] == "not-applicable" and "retention must be None" in v["reason"]
    s = run_accuracy_cell(smoke_model_dir, "stts", None, 0.5, n_samples=2, progress=False)
    assert s["status"] == "ok" and s["label"] == "stts-untrained-scorer"
    assert s["options"]["applied"]["prune_at"] == 0
