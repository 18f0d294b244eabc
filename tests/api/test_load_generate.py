"""methods.load(...).generate on tiny checkpoints of the three families: batched greedy output equals
one request at a time and the established single-request path (methods.pipeline.run), tokens kept
per stage, the user's model untouched, sampling options."""
from __future__ import annotations

import pytest
import torch

import methods
from methods.api import PrunedVideoLLM
from methods.pipeline import run

FAMILIES = ("llava-onevision", "qwen2.5-vl", "molmo2")


@pytest.fixture(scope="module")
def loaded(checkpoints, family_setup):
    """family -> (unpruned model, model with the family's pruning method), both on one checkpoint each."""
    out = {}
    for family in FAMILIES:
        kw, name, options = family_setup[family]
        out[family] = (methods.load(checkpoints[family], frames=8, **kw),
                       methods.load(checkpoints[family], name, frames=8, **kw, **options))
    return out


@pytest.mark.parametrize("family", FAMILIES)
def test_load_picks_the_family_adapter_and_the_checkpoint_tokenizer(loaded, family):
    vanilla, pruned = loaded[family]
    assert isinstance(pruned, PrunedVideoLLM) and pruned.family == family
    assert type(pruned.tokenizer).__module__.startswith("transformers")  # the checkpoint's own, not a stand-in
    assert vanilla.method is None and pruned.method is not None


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("pruned_model", [False, True], ids=["unpruned", "pruned"])
def test_batched_greedy_equals_one_at_a_time_and_the_pipeline(loaded, clips, questions, family, pruned_model):
    model = loaded[family][pruned_model]
    batch = model.generate(clips, questions, max_new_tokens=10)
    single = [model.generate([c], [q], max_new_tokens=10)[0] for c, q in zip(clips, questions)]
    assert [a.tokens for a in batch] == [a.tokens for a in single]
    assert [a.text for a in batch] == [a.text for a in single]
    eos = model.tokenizer.eos_token_id
    for clip, q, a in zip(clips, questions, batch):    # the paper tier's request: pipeline.run, greedy
        ref = model.adapter.load_video(str(clip), 8)
        r = run(model.adapter, None, ref.pixel_values, q, timestamps=ref.timestamps, duration=ref.duration,
                decode_steps=9, eos_token_id=eos)
        assert a.tokens == r.tokens and a.schedule.llm_visual == r.schedule.llm_visual
        assert 1 <= len(a.tokens) <= 10 and (len(a.tokens) == 10 or a.tokens[-1] == eos)


@pytest.mark.parametrize("family", FAMILIES)
def test_batch_of_fixed_length_generation_with_ragged_prompts(loaded, clips, questions, family):
    """No end-of-sequence stop: every request decodes 12 tokens over caches of different lengths."""
    model = loaded[family][1]
    batch = model.generate(clips, questions, max_new_tokens=12, eos_token_id=[])
    single = [model.generate([c], [q], max_new_tokens=12, eos_token_id=[])[0] for c, q in zip(clips, questions)]
    assert all(len(a.tokens) == 12 for a in batch)
    assert [a.tokens for a in batch] == [a.tokens for a in single]
    assert len({a.tokens_kept.text for a in batch}) > 1    # the prompts really differ in length


def test_mask_mode_batch_equals_single(checkpoints, clips, questions):
    """FastV's mask mode keeps dropped tokens in the cache as masked keys: the batch's key mask
    carries both the padding and each request's dropped entries."""
    model = methods.load(checkpoints["llava-onevision"], "fastv", k=2, keep=0.5, mode="mask", frames=8)
    batch = model.generate(clips, questions, max_new_tokens=8, eos_token_id=[])
    single = [model.generate([c], [q], max_new_tokens=8, eos_token_id=[])[0] for c, q in zip(clips, questions)]
    assert [a.tokens for a in batch] == [a.tokens for a in single]
    assert batch[0].tokens_kept.llm_output == batch[0].tokens_kept.llm_input // 2


@pytest.mark.parametrize("family", FAMILIES)
def test_tokens_kept_per_stage(loaded, clips, family):
    vanilla, pruned = loaded[family]
    full = vanilla.generate(clips[0], "What colour?", max_new_tokens=2)[0].tokens_kept
    cut = pruned.generate(clips[0], "What colour?", max_new_tokens=2)[0].tokens_kept
    assert full.unpruned == full.llm_input == full.llm_output == cut.unpruned > 0
    assert full.generated == 2 and full.text == cut.text > 0
    if family == "qwen2.5-vl":      # fastv: every token enters the LLM, half survive layer K
        assert cut.llm_input == full.llm_input and cut.llm_output == full.llm_input // 2
    elif family == "llava-onevision":   # holitom: pre-LLM merging, then Stage III inside the LLM
        assert cut.llm_input < full.llm_input and cut.llm_output < cut.llm_input
    else:                           # random pre-LLM subset: half of the pooled tokens, kept to the end
        assert cut.llm_input == cut.llm_output == full.llm_input // 2
    d = cut.as_dict()
    assert set(d) == {"unpruned", "vision_first", "vision_last", "llm_input", "llm_output", "newline", "text",
                      "generated"}


def test_stts_in_vit_counts_and_the_checkpoint_scorer(tmp_path, clips):
    """On a Molmo2 STTS checkpoint (a scorer in its safetensors), load() attaches that scorer; the
    tower's last block runs on fewer tokens than its first."""
    from replicate.paper import rehearsal

    ckpt = rehearsal.write_molmo2_checkpoint(tmp_path / "lite-50", seed=3, topk=0.5)
    model = methods.load(ckpt, "stts", topk=0.5, frames=8)
    state = model.adapter.stts_scorer_state()
    for k, v in model.method._scorer.state_dict().items():
        assert torch.equal(v, state[k].to(v.dtype)), k
    kept = model.generate(clips[0], "What colour?", max_new_tokens=2)[0].tokens_kept
    assert kept.vision_last < kept.vision_first and kept.llm_input < kept.unpruned
    with pytest.warns(RuntimeWarning, match="carries no trained STTS scorer"):
        base = rehearsal.write_molmo2_checkpoint(tmp_path / "base", seed=3)
        methods.load(base, "stts", topk=0.5, frames=8)


def _snapshot(model):
    return ({k: v for k, v in vars(model).items()}, model.training,
            {n for n, m in model.named_modules() if "forward" in vars(m) or "generate" in vars(m)},
            {k: v.clone() for k, v in model.state_dict().items()})


def _same(a, b) -> bool:
    (d1, t1, f1, s1), (d2, t2, f2, s2) = a, b
    return (d1.keys() == d2.keys() and all(d1[k] is d2[k] for k in d1) and t1 == t2 and f1 == f2
            and all(torch.equal(s1[k], s2[k]) for k in s1))


def test_nothing_is_patched_on_the_users_model(checkpoints, clips):
    from transformers import AutoTokenizer, LlavaOnevisionForConditionalGeneration

    path = checkpoints["llava-onevision"]
    hf = LlavaOnevisionForConditionalGeneration.from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)
    before = _snapshot(hf)
    forward, generate = type(hf).forward, type(hf).generate
    model = methods.load(hf, "holitom", retention=0.5, inner_k=2, tokenizer=tok, frames=8)
    model.generate(clips[:2], ["Q1", "Q2"], max_new_tokens=3)
    assert _same(before, _snapshot(hf)) and "forward" not in vars(hf) and "generate" not in vars(hf)
    model.remove()
    assert model.method is None and _same(before, _snapshot(hf))
    assert type(hf).forward is forward and type(hf).generate is generate
    # the model's own HF forward still runs unpruned after all this
    ids = torch.tensor([[1, 2, 3]])
    assert hf(input_ids=ids).logits.shape[:2] == (1, 3)


def test_instance_scope_and_undo(checkpoints, clips):
    """Two PrunedVideoLLM on one HF model: each its own method; remove() gives the unpruned run."""
    from transformers import AutoTokenizer, LlavaOnevisionForConditionalGeneration

    path = checkpoints["llava-onevision"]
    hf = LlavaOnevisionForConditionalGeneration.from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)
    plain = methods.load(hf, tokenizer=tok, frames=8)
    pruned = methods.load(hf, "fastv", k=1, keep=0.25, tokenizer=tok, frames=8)
    ref = plain.generate(clips[0], "Q", max_new_tokens=4)[0]
    got = pruned.generate(clips[0], "Q", max_new_tokens=4)[0]
    assert got.tokens_kept.llm_output < ref.tokens_kept.llm_output
    assert plain.generate(clips[0], "Q", max_new_tokens=4)[0].tokens == ref.tokens
    with pruned:
        pass
    after = pruned.generate(clips[0], "Q", max_new_tokens=4)[0]
    assert after.tokens == ref.tokens and after.tokens_kept == ref.tokens_kept


def test_processor_gives_tokenizer_and_normalisation(checkpoints, clips):
    """An HF processor's tokenizer and its video processor's mean/std are what the adapter uses
    (duck-typed here: HF's LLaVA / Qwen / Molmo2 processors need torchvision, absent on CPU)."""
    from types import SimpleNamespace

    from transformers import AutoTokenizer, LlavaOnevisionForConditionalGeneration

    path = checkpoints["llava-onevision"]
    hf = LlavaOnevisionForConditionalGeneration.from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)
    proc = SimpleNamespace(tokenizer=tok, video_processor=SimpleNamespace(image_mean=[0.1, 0.2, 0.3],
                                                                          image_std=[0.5, 0.6, 0.7]))
    model = methods.load(hf, processor=proc, frames=8)
    assert model.tokenizer is tok
    assert model.adapter.image_mean == (0.1, 0.2, 0.3) and model.adapter.image_std == (0.5, 0.6, 0.7)
    assert model.generate(clips[0], "Q", max_new_tokens=2)[0].tokens


def test_video_inputs_paths_clips_and_frames(loaded, clips):
    """A path, a VideoClip, normalised frames and raw uint8 frames of the same video give one answer
    (times differ: the float frames carry none, so LLaVA's prompt is the same here)."""
    import av
    import numpy as np

    model = loaded["llava-onevision"][1]
    clip = model.adapter.load_video(str(clips[1]), 8)
    with av.open(str(clips[1])) as c:
        raw = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    outs = [model.generate(v, "What colour?", max_new_tokens=4)[0].tokens
            for v in (clips[1], clip, clip.pixel_values, raw)]
    assert outs[0] == outs[1] == outs[2] == outs[3]


def test_sampling(loaded, clips, questions):
    model = loaded["llava-onevision"][0]
    greedy = model.generate(clips, questions, max_new_tokens=6, eos_token_id=[])
    top1 = model.generate(clips, questions, max_new_tokens=6, eos_token_id=[], do_sample=True, top_k=1, seed=0)
    assert [a.tokens for a in top1] == [a.tokens for a in greedy]         # top-k 1 is greedy
    kw = dict(max_new_tokens=6, eos_token_id=[], do_sample=True, temperature=5.0, top_p=0.99, seed=7)
    a, b = model.generate(clips, questions, **kw), model.generate(clips, questions, **kw)
    assert [x.tokens for x in a] == [x.tokens for x in b]                 # seeded
    c = model.generate(clips, questions, **{**kw, "seed": 8})
    assert [x.tokens for x in a] != [x.tokens for x in c]
    assert [x.tokens for x in a] != [x.tokens for x in greedy]


def test_next_tokens_top_p_keeps_the_nucleus():
    from methods.generation import GenerationConfig, next_tokens

    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    cfg = GenerationConfig(do_sample=True, top_p=0.75, top_k=0)
    g = torch.Generator().manual_seed(0)
    drawn = {int(next_tokens(logits, cfg, g)) for _ in range(200)}
    assert drawn == {0, 1}      # 0.5 + 0.3 >= 0.75: tokens 2 and 3 are outside the nucleus
