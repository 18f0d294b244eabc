"""Adapter for HF ``Molmo2ForConditionalGeneration`` (transformers ``models.molmo2``): STTS's own backbone.

Where things are in the HF implementation (transformers 5.x, ``models/molmo2/modeling_molmo2.py``):

- ViT ``model.model.vision_tower`` (``Molmo2VisionModel``): frames are the batch dimension
  (F, 27*27 = 729, 1152); no post-layernorm (:mod:`.molmo2_tower`).
- Connector ``model.model.multi_modal_projector``: the outputs of ViT blocks
  ``adapter_config.vision_feature_layer`` (e.g. [24, 18]) concatenated on the channel axis, 3x3
  attention pooling (81 windows per frame), then the SwiGLU ``image_projector``.
- Prompt: :mod:`.molmo2_prompt`; construction and the HF layout: :mod:`.molmo2_loading`.

STTS on it, as the paper and its code place it (docs/sources.md#stts): an attached stts method runs in the
ViT (``method.runs_in_vit``: scorer after block ``prune_at``, key bias in ``prune_at+1``, packing
after it), the STTS groups *are* the connector's 3x3 windows, and the prompt carries one
``<im_patch>`` per kept pooled token of each frame. Only video frames are pruned (videos only).
ToMe (``methods.baselines.tome``) merges in the same ViT blocks and sends its merged tokens through
the connector one window each (``molmo2_tower.connect_tokens``).

The LLM runs through HF's own ``Molmo2Model`` forward behind ``prefill`` / ``decode_step``, not
through :mod:`methods.runtime`'s decoder-layer loop, because its decoder differs from the
Qwen2-style stack that loop drives: the prefill mask is causal *plus* one bidirectional block over
every image token (``mm_token_type_ids``, ``create_causal_mask(block_sequence_ids=...)``), layers
use a scaled or an unscaled RoPE table each (``rope_scaling_layers``), and attention applies q/k
RMSNorm before RoPE (which ``runtime.score_visual`` does not). The methods registered here act
before the LLM, so no inner-LLM plan is needed; one is refused with a clear error.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch

from costmodel.schedule import TokenSchedule, uniform_vision
from methods.runtime import VISUAL, PrefillResult
from methods.types import Reduction, VideoTokens

from . import molmo2_loading as loading
from . import molmo2_prompt as prompt
from . import molmo2_tower as tower
from .base import HFModelDims, PromptInputs
from .text import ByteTokenizer
from .vision_prune import PrunedVideoTokens, TowerRun

__all__ = ["Molmo2VideoAdapter", "tiny_molmo2_config", "answer_logits"]

EXPECTED_MODEL_TYPE = loading.EXPECTED_MODEL_TYPE
MOLMO2_MEAN_STD = loading.MOLMO2_MEAN_STD
tiny_molmo2_config = loading.tiny_molmo2_config
class Molmo2VideoAdapter(HFModelDims):
    """Runs one HF Molmo2 instance on videos, with pre-LLM reductions and STTS's in-ViT pruning."""

    #: the family a method declares it runs on (``Method.families``: pre-LLM reductions, STTS's
    #: in-ViT rules, ToMe in the ViT)
    family = "molmo2"

    def __init__(self, model, tokenizer=None, image_mean: Sequence[float] = MOLMO2_MEAN_STD[0],
                 image_std: Sequence[float] = MOLMO2_MEAN_STD[1], pooling: tuple[int, int] = (3, 3)):
        if getattr(model.config, "model_type", None) != EXPECTED_MODEL_TYPE:
            raise ValueError(f"Molmo2VideoAdapter needs model_type {EXPECTED_MODEL_TYPE!r}, got "
                             f"{getattr(model.config, 'model_type', None)!r}")
        self.model = model
        vocab = int(model.config.text_config.vocab_size)
        self.tokenizer = tokenizer if tokenizer is not None else ByteTokenizer(vocab)
        self.image_mean = tuple(float(x) for x in image_mean)
        self.image_std = tuple(float(x) for x in image_std)
        if pooling[0] != pooling[1]:
            raise ValueError(f"STTS groups need a square pooling window, got {pooling}")
        self.pooling = (int(pooling[0]), int(pooling[1]))
        self.method = None
        self.checkpoint_dir: Optional[str] = None   # set by from_pretrained
        tower.check_grid(self)

    # ---- construction --------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path, dtype=torch.float32, device="cpu", **kwargs) -> "Molmo2VideoAdapter":
        """Load a local HF Molmo2 checkpoint directory (never downloads)."""
        model, tokenizer, mean, std = loading.load_checkpoint(path, dtype=dtype, device=device)
        adapter = cls(model, tokenizer=tokenizer, image_mean=mean, image_std=std, **kwargs)
        adapter.checkpoint_dir = str(path)
        return adapter

    @classmethod
    def from_config(cls, config: Union[str, dict, object], dtype=torch.float32, device="cpu", seed: int = 0,
                    attn_implementation: str = "sdpa") -> "Molmo2VideoAdapter":
        """Random weights from an HF config (object or dict) or a costmodel architecture name
        (``molmo2-4b``). ``device="meta"`` builds shapes only (no memory)."""
        return cls(loading.random_model(config, dtype=dtype, device=device, seed=seed,
                                        attn_implementation=attn_implementation))

    @classmethod
    def tiny(cls, seed: int = 0, vocab_size: int = 1000, image_size: int = 126, vision_layers: int = 8,
             text_layers: int = 2) -> "Molmo2VideoAdapter":
        """Tiny random-weight Molmo2 of the real architecture (see ``tiny_molmo2_config``)."""
        return cls.from_config(tiny_molmo2_config(vocab_size, image_size, vision_layers, text_layers), seed=seed)

    def save_pretrained(self, path, scorer=None, **save_kw):
        """The HF on-disk layout, with an STTS ``scorer`` inside when given (``molmo2_loading``)."""
        return loading.save_checkpoint(self, path, scorer=scorer, **save_kw)

    def stts_scorer_state(self) -> Optional[dict]:
        """The STTS scorer weights of the checkpoint this adapter was loaded from (None: it has none)."""
        return None if self.checkpoint_dir is None else loading.load_scorer_state(self.checkpoint_dir)

    # ---- dimensions ------------------------------------------------------------------------
    @property
    def tower(self):
        return self.model.model.vision_tower

    @property
    def connector(self):
        return self.model.model.multi_modal_projector

    @property
    def patch_size(self) -> int:
        return int(self.vision_config.patch_size)

    @property
    def image_size(self) -> int:
        return int(self.vision_config.image_size[0])

    @property
    def tower_grid(self) -> tuple[int, int]:
        s = self.vision_config.image_size
        return (int(s[0]) // self.patch_size, int(s[1]) // self.patch_size)

    @property
    def grid(self) -> tuple[int, int]:
        h, w = self.tower_grid
        return (-(-h // self.pooling[0]), -(-w // self.pooling[1]))

    @property
    def tokens_per_frame(self) -> int:
        h, w = self.grid
        return h * w

    @property
    def tower_tokens(self) -> int:
        h, w = self.tower_grid
        return h * w

    @property
    def feature_blocks(self) -> list[int]:
        """The connector's ViT blocks as non-negative block indices (``hidden_states[l + 1]``)."""
        n = len(self.tower.layers)
        return [l if l >= 0 else n + l for l in self.config.adapter_config.vision_feature_layer]

    @property
    def vision_layers(self) -> int:
        return len(self.tower.layers)

    @property
    def vision_layers_run(self) -> int:
        return max(self.feature_blocks) + 1

    @property
    def newline_policy(self) -> str:
        return "none"

    def arch_spec(self, name: Optional[str] = None, default_frames: int = 64):
        """costmodel ArchSpec of this instance."""
        from costmodel.arch import ArchSpec

        full = self.config.to_dict()
        d = {k: full[k] for k in ("model_type", "text_config", "vision_config", "adapter_config")}
        d["tie_word_embeddings"] = False
        h, w = self.tower_grid
        d["_video"] = {"default_frames": default_frames, "grid": [h, w], "pooled_grid": list(self.grid),
                       "pooling": "attention_3x3", "tokens_per_frame": self.tokens_per_frame, "newline": "none",
                       "vision_layers_run": self.vision_layers_run}
        return ArchSpec.from_hf_config(d, name or "adapter-molmo2")

    # ---- video -----------------------------------------------------------------------------
    def load_video(self, path, frames: int):
        """Decode and preprocess a local video (methods.video_io): (F, 3, S, S) normalised."""
        from methods.video_io import load_video

        return load_video(path, frames, self.image_size, self.image_mean, self.image_std)

    def patchify(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return tower.patchify(self, pixel_values)

    def pooling_index(self, frames: int) -> torch.Tensor:
        return tower.pooling_index(self, frames)

    def run_tower(self, pixel_values: torch.Tensor, **prune) -> TowerRun:
        """The (possibly pruned) ViT over one video (``molmo2_tower.run_tower``)."""
        return tower.run_tower(self, pixel_values, **prune)

    def tokens_of(self, run: TowerRun, timestamps=None) -> PrunedVideoTokens:
        """Pooled tokens of a tower run through the connector, with gradients (training)."""
        return tower.tokens_of(self, run, timestamps)

    def encode_video(self, pixel_values: torch.Tensor, timestamps=None) -> VideoTokens:
        """(F, 3, S, S) frames -> pooled tokens; an attached in-ViT method runs its pruned ViT here."""
        self._check_method()
        if self.method is not None and self.method.runs_in_vit:
            return self.method.encode_in_vit(self, pixel_values, timestamps)
        return tower.encode_plain(self, pixel_values, timestamps)

    def encode_video_pruned(self, pixel_values, **options) -> PrunedVideoTokens:
        """The stts methods' in-ViT stage (``molmo2_tower.encode_pruned``)."""
        return tower.encode_pruned(self, pixel_values, **options)

    def _check_method(self) -> None:
        if self.method is not None:
            self.method.check_host(self)

    # ---- prompt ------------------------------------------------------------------------------
    def build_inputs(self, question: str, tokens: VideoTokens, reduction: Optional[Reduction] = None,
                     duration: Optional[float] = None) -> PromptInputs:
        """Molmo2's chat prompt with the video's kept pooled tokens (``molmo2_prompt``)."""
        return prompt.build_inputs(self, question, tokens, reduction)

    def embed_text(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.get_input_embeddings()(ids)

    # ---- LLM (HF's forward; see the module docstring for why not methods.runtime) ---------------
    def _lm(self, embeds: torch.Tensor, positions: torch.Tensor, types: Optional[torch.Tensor],
            cache=None, use_cache: bool = True):
        return self.model.model(inputs_embeds=embeds, position_ids=positions[None], mm_token_type_ids=types,
                                cache=cache, use_cache=use_cache)

    @torch.no_grad()
    def prefill(self, inputs: PromptInputs, plan=None, use_cache: bool = True, all_logits: bool = False,
                forced_keeps=None) -> tuple[torch.Tensor, PrefillResult]:
        """(logits, PrefillResult): last-token (vocab,) logits, or (L, vocab) with ``all_logits``.
        Inner-LLM plans are refused (methods on Molmo2 act before the LLM)."""
        from methods.pipeline import resolve_plan

        if resolve_plan(self, plan) is not None or forced_keeps:
            raise ValueError("inner-LLM plans are not supported by the Molmo2 adapter (its methods act "
                             "before the LLM)")
        L = inputs.length
        types = inputs.info["mm_token_type_ids"]
        if types.shape[1] < L:      # the no-cache decode oracle appends generated text tokens
            types = torch.cat([types, types.new_zeros(1, L - types.shape[1])], dim=1)
        out = self._lm(inputs.inputs_embeds, inputs.position_ids, types, use_cache=use_cache)
        h = out.last_hidden_state
        visual = int((inputs.kinds == VISUAL).sum())
        res = PrefillResult(hidden=h, index=torch.arange(L, device=h.device), cache=out.cache if use_cache else None,
                            next_position=int(inputs.position_ids[-1]) + 1, stage_keeps=[],
                            llm_visual=[visual] * self.num_layers, llm_newline=[0] * self.num_layers,
                            text_tokens=L - visual)
        return self.model.lm_head(h[0] if all_logits else h[0, -1]).float(), res

    @torch.no_grad()
    def decode_step(self, token: int, prefill: PrefillResult, step: int) -> torch.Tensor:
        """(vocab,) logits after feeding ``token`` at decode step ``step`` (0-based) on HF's cache."""
        e = self.embed_text(torch.tensor([[token]], device=self.device))
        pos = torch.tensor([prefill.next_position + step], device=self.device)
        out = self._lm(e, pos, None, cache=prefill.cache)
        prefill.cache = out.cache
        return self.model.lm_head(out.last_hidden_state[0, -1]).float()

    def schedule(self, inputs: PromptInputs, res: PrefillResult, decode_steps: int = 0,
                 label: str = "") -> TokenSchedule:
        """The TokenSchedule this prefill ran (the ViT load recorded by in-ViT pruning, else full; the
        connector counted on the pooled tokens it emitted, as ``costmodel.nominal.projector_tokens``)."""
        return TokenSchedule(
            frames=inputs.frames,
            vision=inputs.info.get("vision_load")
            or uniform_vision(inputs.frames, self.tower_tokens, self.vision_layers_run),
            projector_tokens=inputs.info["connector_tokens"], llm_visual=tuple(res.llm_visual),
            llm_newline=tuple(res.llm_newline), text_tokens=res.text_tokens, decode_steps=decode_steps,
            label=label)


def answer_logits(adapter: Molmo2VideoAdapter, inputs: PromptInputs, answer_ids: torch.Tensor) -> torch.Tensor:
    """(len(answer_ids), vocab) teacher-forced logits of the answer after the prompt, with gradients
    (the LM loss of STTS training and of the timed training step)."""
    emb = torch.cat([inputs.inputs_embeds, adapter.embed_text(answer_ids)[None]], dim=1)
    types = inputs.info["mm_token_type_ids"]
    types = torch.cat([types, torch.zeros_like(answer_ids)[None]], dim=1)
    logits = adapter.model(inputs_embeds=emb, mm_token_type_ids=types, logits_to_keep=0).logits[0]
    L = inputs.length
    return logits[L - 1:L - 1 + answer_ids.numel()]
