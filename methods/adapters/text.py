"""Prompt text for LLaVA-OV / LLaVA-Video and a byte-level stand-in tokenizer for random weights."""
from __future__ import annotations

VIDEO_MARK = "<video>"
SYSTEM = "You are a helpful assistant."


def qwen_chat(user: str) -> str:
    """``qwen_1_5`` conversation template (LLaVA-NeXT) with one user turn; ends where the assistant speaks."""
    return (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
            f"<|im_start|>assistant\n")


def time_instruction(timestamps, duration: float) -> str:
    """LLaVA-Video's time instruction (its eval code prepends it to the question)."""
    times = ",".join(f"{float(t):.2f}s" for t in timestamps)
    return (f"The video lasts for {duration:.2f} seconds, and {len(timestamps)} frames are uniformly "
            f"sampled from it. These frames are located at {times}.Please answer the following "
            f"questions related to this video.")


class ByteTokenizer:
    """Deterministic tokenizer for random-weight models (no vocabulary file exists for them):
    ``<|im_start|>`` -> 1, ``<|im_end|>`` -> 2, every UTF-8 byte b -> 3 + b."""

    SPECIAL = {"<|im_start|>": 1, "<|im_end|>": 2}
    eos_token_id = 2

    def __init__(self, vocab_size: int):
        if vocab_size < 3 + 256:
            raise ValueError(f"ByteTokenizer needs a vocabulary of at least 259 ids, got {vocab_size}")
        self.vocab_size = vocab_size

    def encode(self, text: str) -> list[int]:
        out: list[int] = []
        i = 0
        while i < len(text):
            for mark, idx in self.SPECIAL.items():
                if text.startswith(mark, i):
                    out.append(idx)
                    i += len(mark)
                    break
            else:
                out.extend(3 + b for b in text[i].encode("utf-8"))
                i += 1
        return out

    def decode(self, ids) -> str:
        inv = {v: k for k, v in self.SPECIAL.items()}
        parts, buf = [], bytearray()
        for t in ids:
            t = int(t)
            if t in inv:
                parts.append(buf.decode("utf-8", "replace") + inv[t])
                buf = bytearray()
            elif 3 <= t < 259:
                buf.append(t - 3)
        parts.append(buf.decode("utf-8", "replace"))
        return "".join(parts)


def encode_text(tokenizer, text: str) -> list[int]:
    if isinstance(tokenizer, ByteTokenizer):
        return tokenizer.encode(text)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])
