"""Auxiliary (deep) supervision used only while training the tiny LLaVA-OV on SynthVideoQA.

Trained with the answer-letter loss alone, the from-scratch model sits at chance for hundreds of
steps and then learns one family at a time: 57.3 % test accuracy after 2500 steps (800 s), with
the motion family still at chance (measured, seed 0). Three auxiliary losses, each a linear probe
trained jointly and thrown away afterwards, give the gradients a short path to what the answer
needs:

``colour``    each pooled video token's projected feature predicts which event colour (or none)
              covers it. Labels come from the pixels (saturated pixels per token region), so the
              vision tower learns to see a 10-px object without waiting for the LLM.
``position``  each pooled token's feature predicts its place in the frame's token grid, so
              spatial position survives into the LLM (the motion family compares positions
              across frames; the LLM's 1-D RoPE alone does not say where a token sits in a frame).
``summary``   the LLM's hidden state at the video's last placeholder (an ``image_newline``),
              after ``summary_layer`` decoder layers, predicts (family, answer). The last layer's
              attention from the answer position can then read one summary token instead of
              assembling the answer from 72 scattered tokens.

The saved checkpoint is a plain ``LlavaOnevisionForConditionalGeneration``: the probes are not
part of it, and evaluation uses the answer letter's logit only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from .data import COLOURS, LIGHT, OPTIONS, SynthSample

#: Colour classes of the ``colour`` probe: 0 = no event colour, then the four answer colours and
#: the count family's magenta light.
COLOUR_CLASSES = ("none", *COLOURS, "magenta")
_PALETTE = torch.tensor([*COLOURS.values(), LIGHT], dtype=torch.float32)
#: Background and sensor noise are achromatic (max - min channel = 0 before clipping); every event
#: colour has a channel spread >= 160, so this threshold separates them with a wide margin.
CHROMA_THRESHOLD = 90
#: A token region counts as holding a colour when at least this many pixels have it (a 10-px
#: object covers 100; a corner clipped by a region boundary can cover a handful).
MIN_PIXELS = 6


def token_colour_labels(videos: torch.Tensor, grid: int, min_pixels: int = MIN_PIXELS) -> torch.Tensor:
    """(B, F, S, S, 3) uint8 -> (B, F * grid * grid) long: the event colour covering most pixels
    of each pooled-token region (row-major, as HF pools and flattens), 0 where none does."""
    if videos.dtype != torch.uint8 or videos.dim() != 5 or videos.shape[-1] != 3:
        raise ValueError(f"videos must be uint8 (B, F, S, S, 3), got {videos.dtype} {tuple(videos.shape)}")
    B, Fr, H, W, _ = videos.shape
    if H != W or H % grid:
        raise ValueError(f"frames must be square with a side divisible by grid={grid}, got {H}x{W}")
    # Only the few saturated pixels are classified (a dense palette distance over every pixel cost
    # 0.5 s per training batch at 84 px, measured; this costs milliseconds).
    spread = videos.amax(-1).to(torch.int16) - videos.amin(-1).to(torch.int16)
    b, f, y, x = (spread > CHROMA_THRESHOLD).nonzero(as_tuple=True)
    rgb = videos[b, f, y, x].float()
    cls = ((rgb[:, None, :] - _PALETTE) ** 2).sum(-1).argmin(-1)
    cell = H // grid
    region = ((b * Fr + f) * grid + y // cell) * grid + x // cell
    counts = torch.zeros(B * Fr * grid * grid, len(_PALETTE), dtype=torch.long)
    counts.index_put_((region, cls), torch.ones_like(cls), accumulate=True)
    most, which = counts.max(-1)
    return torch.where(most >= min_pixels, which + 1, torch.zeros_like(which)).reshape(B, Fr * grid * grid)


def summary_targets(samples: Sequence[SynthSample], families: Sequence[str]) -> torch.Tensor:
    """(B,) class of (family, answer) in a joint space: family blocks of their option counts."""
    offsets, o = {}, 0
    for fam in families:
        offsets[fam] = o
        o += len(OPTIONS[fam])
    bad = sorted({s.family for s in samples} - set(offsets))
    if bad:
        raise ValueError(f"samples of families {bad} not in the training families {list(families)}")
    return torch.tensor([offsets[s.family] + s.answer_index for s in samples])


def summary_classes(families: Sequence[str]) -> int:
    return sum(len(OPTIONS[f]) for f in families)


@dataclass(frozen=True)
class AuxWeights:
    colour: float = 1.0
    position: float = 0.3
    summary: float = 1.0

    def active(self) -> bool:
        return any(w > 0 for w in (self.colour, self.position, self.summary))


class AuxProbes(torch.nn.Module):
    """The three linear probes; trained with the model, never saved with it."""

    def __init__(self, hidden: int, grid: int, families: Sequence[str]):
        super().__init__()
        self.grid = grid
        self.families = tuple(families)
        self.colour = torch.nn.Linear(hidden, len(COLOUR_CLASSES))
        self.position = torch.nn.Linear(hidden, grid * grid)
        self.summary = torch.nn.Linear(hidden, summary_classes(families))

    def losses(self, weights: AuxWeights, tokens: torch.Tensor, summary_hidden: torch.Tensor,
               samples: Sequence[SynthSample], colour_labels: Optional[torch.Tensor] = None
               ) -> dict[str, torch.Tensor]:
        """Weighted losses by name. ``tokens``: (B, F*g*g, D) pooled video features (no newline);
        ``summary_hidden``: (B, D) LLM hidden state at the video's last placeholder (a newline);
        ``colour_labels``: ``token_colour_labels`` of the samples when the caller has them."""
        out: dict[str, torch.Tensor] = {}
        B, N, _ = tokens.shape
        if weights.colour > 0:
            labels = colour_labels
            if labels is None:
                labels = token_colour_labels(torch.stack([s.video for s in samples]), self.grid)
            if labels.shape[1] != N:
                raise ValueError(f"{labels.shape[1]} colour labels for {N} video tokens")
            out["colour"] = weights.colour * F.cross_entropy(self.colour(tokens).flatten(0, 1), labels.flatten())
        if weights.position > 0:
            where = torch.arange(self.grid * self.grid).repeat(N // (self.grid * self.grid))
            out["position"] = weights.position * F.cross_entropy(
                self.position(tokens).flatten(0, 1), where.repeat(B))
        if weights.summary > 0:
            out["summary"] = weights.summary * F.cross_entropy(
                self.summary(summary_hidden), summary_targets(samples, self.families))
        return out
