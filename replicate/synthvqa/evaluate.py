"""Multiple-choice scoring of the tiny LLaVA-OV on SynthVideoQA by option-letter logits.

Deterministic and generation-free: the prediction is the option letter with the largest logit at
the answer position (the last prompt token, right after ``<|im_start|>assistant\\n``), the way
lmms-eval's MVBench/VideoMME tasks read a single-letter answer.

Two paths, the same numbers unpruned (tests/harness holds the logits equal):

- no method: batched HF-layout forward (``video_features`` -> ``build_inputs_embeds`` -> LLM),
  what training's validation uses;
- a :class:`methods.base.Method`: one request per sample through ``methods.pipeline.run`` (the
  one request pipeline every pruned evaluation uses), on a ``LlavaOnevisionAdapter`` over the
  same model.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import torch

from .model import (CLIP_MEAN, CLIP_STD, Layout, build_inputs_embeds, lm_hidden, num_video_tokens, preprocess_video,
                    video_features)
from .data import OPTIONS, SynthSample, SynthSplit
from .tokenizer import encode_prompt, letter_ids


@dataclass
class Batch:
    input_ids: torch.Tensor        # (B, L) right-padded
    attention_mask: torch.Tensor   # (B, L)
    pixel_values_videos: torch.Tensor  # (B, F, 3, S, S)
    answer_pos: torch.Tensor       # (B,) index of the last prompt token
    labels: torch.Tensor           # (B,) token id of the answer letter
    layout: Layout = Layout()      # newline layout and time prompt the prompts were built in


_PROMPT_CACHE: dict = {}


def _cached_prompt(tokenizer, sample: SynthSample, nv: int, time_prompt: bool) -> list[int]:
    # Prompts repeat (one per family when options are not shuffled): tokenise each once.
    key = (id(tokenizer), len(tokenizer), sample.prompt, nv, time_prompt and tuple(sample.timestamps.tolist()))
    if key not in _PROMPT_CACHE:
        if len(_PROMPT_CACHE) > 10_000:
            _PROMPT_CACHE.clear()
        _PROMPT_CACHE[key] = encode_prompt(tokenizer, sample, nv, time_prompt)
    return _PROMPT_CACHE[key]


def collate(samples: Sequence[SynthSample], tokenizer, config, layout: Layout = Layout()) -> Batch:
    """Prompts expanded to the model's video token count in ``layout``, right-padded; pixels
    normalised."""
    if not samples:
        raise ValueError("collate needs at least one sample")
    frames = {s.video.shape[0] for s in samples}
    if len(frames) != 1:
        raise ValueError(f"all videos in a batch need the same frame count, got {sorted(frames)}")
    nv = num_video_tokens(config, frames.pop(), layout.setting)
    rows = [_cached_prompt(tokenizer, s, nv, layout.time_prompt) for s in samples]
    L = max(len(r) for r in rows)
    ids = torch.full((len(rows), L), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), L), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
        mask[i, :len(r)] = 1
    letters = letter_ids(tokenizer, 8)
    size = config.vision_config.image_size
    pix = preprocess_video(torch.stack([s.video for s in samples]), size)
    return Batch(ids, mask, pix, torch.tensor([len(r) - 1 for r in rows]),
                 torch.tensor([letters[s.answer_index] for s in samples]), layout)


def answer_hidden(model, batch: Batch) -> torch.Tensor:
    """(B, D) LLM hidden state at each row's answer position (unpruned path)."""
    feats = video_features(model, batch.pixel_values_videos, batch.layout.setting)
    embeds = build_inputs_embeds(model, batch.input_ids, feats)
    hidden = lm_hidden(model, embeds, batch.attention_mask)
    return hidden[torch.arange(hidden.shape[0]), batch.answer_pos]


def max_options(samples: Sequence[SynthSample]) -> int:
    """Most options of any sample; a lazy split answers from its families without rendering videos."""
    if isinstance(samples, SynthSplit):
        return max(len(OPTIONS[f]) for f in samples.families())
    return max(len(s.options) for s in samples)


def pipeline_option_logits(adapter, method, sample: SynthSample, letters: torch.Tensor, label: str = ""):
    """(n_options,) option-letter logits of one sample through ``methods.pipeline.run`` (prefill
    only, no KV cache) and the request's ``RequestResult``."""
    from methods.pipeline import run

    pix = preprocess_video(sample.video, adapter.image_size)
    r = run(adapter, method, pix, sample.prompt, timestamps=sample.timestamps, use_cache=False, label=label)
    return r.logits[letters[:len(sample.options)]], r


def adapter_for(model, tokenizer, layout: Layout = Layout()):
    """A LlavaOnevisionAdapter over ``model`` in ``layout`` with this tier's tokenizer and CLIP
    normalisation."""
    from methods.adapters import LlavaOnevisionAdapter

    return LlavaOnevisionAdapter(model, layout.setting, tokenizer=tokenizer, image_mean=CLIP_MEAN, image_std=CLIP_STD,
                                 time_prompt=layout.time_prompt)


def _batched_option_logits(model, tokenizer, samples, letters, out, batch_size: int, layout: Layout) -> None:
    for start in range(0, len(samples), batch_size):
        chunk = samples[start:start + batch_size]
        h = answer_hidden(model, collate(chunk, tokenizer, model.config, layout))
        logits = model.lm_head(h)[:, letters].float()
        for j, s in enumerate(chunk):
            k = len(s.options)
            out[start + j, :k] = logits[j, :k]


@torch.no_grad()
def option_logits(model, tokenizer, samples: Sequence[SynthSample], *, method=None,
                  batch_size: int = 16, layout: Layout = Layout()) -> torch.Tensor:
    """(n, max_options) logits of the letters A.. at the answer position (-inf past a sample's
    options). ``method``: a Method run through the pipeline, or None (batched, unpruned)."""
    n_opt = max_options(samples)
    letters = torch.tensor(letter_ids(tokenizer, n_opt))
    out = torch.full((len(samples), n_opt), float("-inf"))
    if method is None:
        _batched_option_logits(model, tokenizer, samples, letters, out, batch_size, layout)
        return out
    adapter = adapter_for(model, tokenizer, layout)
    for i, s in enumerate(samples):
        lg, _ = pipeline_option_logits(adapter, method, s, letters)
        out[i, :lg.shape[0]] = lg
    return out


def evaluate(model, tokenizer, samples: Sequence[SynthSample], *, method=None, batch_size: int = 16,
             layout: Layout = Layout()) -> dict:
    """Accuracy overall and per family; ``predictions`` lists the chosen letters. ``method``: a
    Method (through ``methods.pipeline``) or None (the unpruned model, batched); ``layout``: the
    token layout the model was trained in."""
    if not samples:
        raise ValueError("evaluate needs at least one sample")
    was_training = model.training
    model.eval()
    try:
        logits = option_logits(model, tokenizer, samples, method=method, batch_size=batch_size, layout=layout)
    finally:
        model.train(was_training)
    pred = logits.argmax(-1).tolist()
    correct = [p == s.answer_index for p, s in zip(pred, samples)]
    fam: dict[str, list[bool]] = defaultdict(list)
    for c, s in zip(correct, samples):
        fam[s.family].append(c)
    return {
        "accuracy": sum(correct) / len(correct),
        "n": len(samples),
        "per_family": {f: sum(v) / len(v) for f, v in sorted(fam.items())},
        "per_family_n": {f: len(v) for f, v in sorted(fam.items())},
        "predictions": ["ABCDEFGH"[p] for p in pred],
    }
