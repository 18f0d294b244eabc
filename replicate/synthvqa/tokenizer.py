"""A word-level tokenizer built from SynthVideoQA's vocabulary, as a real HF tokenizer.

It is a ``PreTrainedTokenizerFast`` around a ``tokenizers`` WordLevel model, so
``save_pretrained`` / ``AutoTokenizer.from_pretrained`` work offline like for a real checkpoint.
Pre-tokenisation keeps words, single punctuation marks and newlines (newlines matter to the chat
template); special tokens follow the Qwen2 chat convention used by LLaVA-OneVision.
"""
from __future__ import annotations

import re
from typing import Iterable, Optional

from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from .data import LETTERS, SynthConfig, SynthSample, vocabulary_texts

PAD, UNK, EOS = "<|pad|>", "<|unk|>", "<|endoftext|>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
VIDEO, IMAGE = "<video>", "<image>"
SPECIAL_TOKENS = (PAD, UNK, EOS, IM_START, IM_END, VIDEO, IMAGE)
_WORD = r"\w+|[^\w\s]|\n"
SYSTEM = "You are a helpful assistant."


def _words(text: str) -> list[str]:
    return re.findall(_WORD, text)


def build_tokenizer(cfg: Optional[SynthConfig] = None, extra_texts: Iterable[str] = ()) -> PreTrainedTokenizerFast:
    """Tokenizer whose vocabulary covers every text the generator and chat template emit."""
    words: set[str] = set()
    for t in [*vocabulary_texts(cfg), SYSTEM, "system user assistant", *extra_texts]:
        words.update(_words(t))
    words.update(LETTERS)
    words.add("\n")
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for w in sorted(words):  # sorted: the same vocabulary on every machine
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(_WORD), behavior="removed", invert=True)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, unk_token=UNK, eos_token=EOS,
        additional_special_tokens=[IM_START, IM_END, VIDEO, IMAGE],
        model_max_length=4096, padding_side="right",
    )
    return fast


def token_id(tokenizer, token: str) -> int:
    tid = tokenizer.convert_tokens_to_ids(token)
    if tid is None or tid == tokenizer.unk_token_id and token != UNK:
        raise KeyError(f"token {token!r} is not in the tokenizer's vocabulary")
    return int(tid)


def chat_prompt(user_text: str, after_video: str = "") -> str:
    """Qwen2 chat template with the video placeholder first, ending where the answer starts;
    ``after_video``: text between the video and the question (LLaVA-Video's time instruction)."""
    return (f"{IM_START}system\n{SYSTEM}{IM_END}\n{IM_START}user\n{VIDEO}{after_video}\n{user_text}{IM_END}\n"
            f"{IM_START}assistant\n")


def time_text(timestamps) -> str:
    """LLaVA-Video's time instruction for these frame times, the video lasting until the last one
    (what ``methods.adapters.llava_onevision_prompt.prompt_text`` writes when no duration is given)."""
    from methods.adapters.text import time_instruction

    times = [float(t) for t in timestamps]
    return time_instruction(times, times[-1] if times else 0.0)


def prompt_texts(time_prompt: bool, cfg: Optional[SynthConfig] = None) -> list[str]:
    """Extra texts the prompts hold (the tokenizer must cover them): LLaVA-Video's time instruction
    for the data's frame times when ``time_prompt``."""
    from .data import frame_times

    return [time_text(frame_times(cfg or SynthConfig()))] if time_prompt else []


def encode_prompt(tokenizer, sample: SynthSample, num_video_tokens: int, time_prompt: bool = False) -> list[int]:
    """Token ids of the prompt, the single <video> expanded to ``num_video_tokens`` copies
    (what the HF processor does with the model's video feature count); ``time_prompt`` adds
    LLaVA-Video's time instruction after the video."""
    if num_video_tokens < 1:
        raise ValueError(f"num_video_tokens must be >= 1, got {num_video_tokens}")
    after = time_text(sample.timestamps) if time_prompt else ""
    ids = tokenizer(chat_prompt(sample.prompt, after), add_special_tokens=False)["input_ids"]
    vid = token_id(tokenizer, VIDEO)
    if ids.count(vid) != 1:
        raise ValueError(f"prompt must contain exactly one {VIDEO}, found {ids.count(vid)}")
    unk = tokenizer.unk_token_id
    if unk in ids:
        raise ValueError(f"prompt has out-of-vocabulary words: {chat_prompt(sample.prompt, after)!r}")
    i = ids.index(vid)
    return ids[:i] + [vid] * num_video_tokens + ids[i + 1:]


def letter_ids(tokenizer, n: int = 4) -> list[int]:
    """Token ids of the option letters A.. (the single answer token)."""
    return [token_id(tokenizer, c) for c in LETTERS[:n]]
