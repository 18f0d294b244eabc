"""Adapter for HF ``LlavaOnevisionForConditionalGeneration`` in the two settings the papers use.

================  ==============================  ===========================================
setting           pooling of the 27x27 grid        newline tokens / prompt
================  ==============================  ===========================================
llava-onevision   bilinear to ceil(h/2) (196/fr)   one ``image_newline`` after the whole video
llava-video       avg-pool stride 2 (13x13=169)    a newline after every grid row; time prompt
================  ==============================  ===========================================

Features follow HF ``get_video_features``: tower hidden state ``vision_feature_layer`` -> projector
-> pooling (projection before pooling, papers.md A.1). ``encode_video`` also returns the saliency
signals, pooled exactly like the features:

- ``vit_attn_received``: the attention each token receives in the tower layer that produced the
  features (heads and queries averaged), from q, k recomputed for that one layer (no eager tower).
- ``map_head_attn``: the SigLIP attention-pooling (MAP) head's probe attention (heads averaged),
  applied after ``post_layernorm``; ``global_features`` is the head's pooled output. The HF LLaVA-OV
  tower has no head (``vision_use_head=False``), so unless the tower has one we build a separate
  ``SiglipMultiheadAttentionPoolingHead`` from the vision config: with random weights (and for a
  real checkpoint that lacks the head weights) this signal is random, not SigLIP's.
- ``keys``: head-averaged keys of the same layer (VisionZip's key metric), pooled.

The LLM is run by :mod:`methods.runtime` (our own decoder-layer loop); the HF model instance is
never modified.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as Fn

from costmodel.schedule import TokenSchedule, uniform_vision
from methods.types import Reduction, VideoTokens
from methods.runtime import (NEWLINE, TEXT, VISUAL, InnerPlan, PrefillResult, llm_decode_step,
                             llm_prefill)
from .text import VIDEO_MARK, ByteTokenizer, encode_text, qwen_chat, time_instruction

SETTINGS = {
    "llava-onevision": {"pool": "bilinear", "newline": "one_token", "time_prompt": False},
    "llava-video": {"pool": "average", "newline": "grid", "time_prompt": True},
}
EXPECTED_MODEL_TYPE = "llava_onevision"
SIGLIP_MEAN_STD = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # SigLIP processor default

#: Full-size configurations (numbers from papers.md A.1/A.2: SigLIP so400m 26 layers as in the HF
#: port, Qwen2-7B). Used only when costmodel ships no HF config JSON for the name.
_FULL_SIZE = {
    "llava-onevision-7b": dict(
        vision_config=dict(model_type="siglip_vision_model", hidden_size=1152, intermediate_size=4304,
                           num_hidden_layers=26, num_attention_heads=16, patch_size=14, image_size=384,
                           vision_use_head=False),
        text_config=dict(model_type="qwen2", hidden_size=3584, intermediate_size=18944,
                         num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
                         vocab_size=152064, max_position_embeddings=32768, rope_theta=1000000.0),
        image_token_index=151646, video_token_index=151647,
        vision_feature_select_strategy="full", vision_feature_layer=-1),
}
_FULL_SIZE["llava-video-7b"] = _FULL_SIZE["llava-onevision-7b"]


def _check_setting(setting: str) -> str:
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; allowed: {sorted(SETTINGS)}")
    return setting


@dataclass
class PromptInputs:
    """One prompt ready for the LLM (batch 1)."""

    inputs_embeds: torch.Tensor          # (1, L, D)
    position_ids: torch.Tensor           # (L,)
    kinds: torch.Tensor                  # (L,) TEXT / VISUAL / NEWLINE
    input_ids: Optional[torch.Tensor]    # (1, L) HF-compatible ids (unpruned prompts only)
    frames: int
    tower_tokens: int                    # tokens per frame inside the vision tower
    info: dict = field(default_factory=dict)

    @property
    def length(self) -> int:
        return int(self.inputs_embeds.shape[1])


@dataclass
class Generation:
    """Greedy output. ``schedule.decode_steps`` counts decode forward passes: ``len(tokens) - 1``
    (the first token comes from the prefill logits; costmodel's step i attends kv + i + 1 keys)."""

    tokens: list[int]
    schedule: TokenSchedule
    prefill_logits: torch.Tensor         # (vocab,) logits of the first generated token
    text: str = ""
    step_logits: list = field(default_factory=list)  # (vocab,) logits behind every generated token


class LlavaOnevisionAdapter:
    """Runs one HF LLaVA-OV model instance with pre-LLM reductions and inner-LLM plans."""

    def __init__(self, model, setting: str = "llava-onevision", tokenizer=None,
                 image_mean: Sequence[float] = SIGLIP_MEAN_STD[0],
                 image_std: Sequence[float] = SIGLIP_MEAN_STD[1], map_head_seed: int = 0):
        if getattr(model.config, "model_type", None) != EXPECTED_MODEL_TYPE:
            raise ValueError(f"LlavaOnevisionAdapter needs model_type {EXPECTED_MODEL_TYPE!r}, "
                             f"got {getattr(model.config, 'model_type', None)!r}")
        self.model = model  # left in the mode it is in (constructors below return eval models)
        self.setting = _check_setting(setting)
        self.tokenizer = tokenizer if tokenizer is not None else ByteTokenizer(self.text_config.vocab_size)
        self.image_mean = tuple(float(x) for x in image_mean)
        self.image_std = tuple(float(x) for x in image_std)
        self.method = None                # attached Method (see methods.base.apply_method)
        self.last_schedule: Optional[TokenSchedule] = None
        self._map_head = None
        self._map_head_seed = map_head_seed

    # ---- construction --------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path, setting: str = "llava-onevision", dtype=torch.float32,
                        device="cpu", **kwargs) -> "LlavaOnevisionAdapter":
        """Load a local HF checkpoint directory (never downloads)."""
        from transformers import LlavaOnevisionForConditionalGeneration

        path = Path(path)
        if not path.is_dir():
            raise ValueError(f"checkpoint directory {str(path)!r} does not exist (expected a local HF "
                             f"checkpoint with model_type {EXPECTED_MODEL_TYPE!r})")
        cfg_file = path / "config.json"
        if not cfg_file.is_file():
            raise ValueError(f"{str(path)!r} has no config.json (expected an HF checkpoint with "
                             f"model_type {EXPECTED_MODEL_TYPE!r})")
        model_type = json.loads(cfg_file.read_text()).get("model_type")
        if model_type != EXPECTED_MODEL_TYPE:
            raise ValueError(f"{str(path)!r} holds model_type {model_type!r}; expected "
                             f"{EXPECTED_MODEL_TYPE!r} (LlavaOnevisionForConditionalGeneration)")
        model = LlavaOnevisionForConditionalGeneration.from_pretrained(
            str(path), dtype=dtype, attn_implementation="sdpa", local_files_only=True).to(device).eval()
        mean, std = SIGLIP_MEAN_STD
        pre = path / "preprocessor_config.json"
        if pre.is_file():
            d = json.loads(pre.read_text())
            mean, std = d.get("image_mean", mean), d.get("image_std", std)
        tokenizer = None
        if any((path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json")):
            from transformers import AutoTokenizer
            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        return cls(model, setting, tokenizer=tokenizer, image_mean=mean, image_std=std, **kwargs)

    @classmethod
    def from_config(cls, config_or_arch_name: Union[str, dict, object], setting: str = "llava-onevision",
                    dtype=torch.float32, device="cpu", seed: int = 0, attn_implementation: str = "sdpa"):
        """Random weights from an HF config (object or dict) or an architecture name (full size)."""
        from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration

        cfg = config_or_arch_name
        if isinstance(cfg, str):
            cfg = _arch_config_dict(cfg)
        if isinstance(cfg, dict):
            d = _strip_private(cfg)
            if d.get("model_type", EXPECTED_MODEL_TYPE) != EXPECTED_MODEL_TYPE:
                raise ValueError(f"config has model_type {d.get('model_type')!r}; expected {EXPECTED_MODEL_TYPE!r}")
            d.pop("model_type", None)
            cfg = LlavaOnevisionConfig(**d)
        cfg._attn_implementation = attn_implementation
        torch.manual_seed(seed)
        with torch.device(device):
            model = LlavaOnevisionForConditionalGeneration(cfg)
        model = model.to(dtype=dtype).eval()
        return cls(model, setting, map_head_seed=seed)

    @classmethod
    def tiny(cls, setting: str = "llava-onevision", seed: int = 0, layers: int = 4, image_size: int = 56,
             vocab_size: int = 1000, attn_implementation: str = "sdpa") -> "LlavaOnevisionAdapter":
        """Tiny random model of the real architecture (environment.md): SigLIP 2 layers / hidden 64 /
        patch 14; Qwen2 ``layers`` layers / hidden 128 / 4 heads / 2 KV heads."""
        cfg = dict(
            vision_config=dict(model_type="siglip_vision_model", hidden_size=64, intermediate_size=128,
                               num_hidden_layers=2, num_attention_heads=4, patch_size=14,
                               image_size=image_size, vision_use_head=False),
            text_config=dict(model_type="qwen2", hidden_size=128, intermediate_size=256,
                             num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                             vocab_size=vocab_size, max_position_embeddings=8192),
            image_token_index=vocab_size - 2, video_token_index=vocab_size - 1,
            vision_feature_select_strategy="full", vision_feature_layer=-1)
        return cls.from_config(cfg, setting=setting, seed=seed, attn_implementation=attn_implementation)

    # ---- dimensions ------------------------------------------------------------------------
    @property
    def config(self):
        return self.model.config

    @property
    def text_config(self):
        return self.model.config.text_config

    @property
    def vision_config(self):
        return self.model.config.vision_config

    @property
    def lm(self):
        return self.model.model.language_model

    @property
    def num_layers(self) -> int:
        return len(self.lm.layers)

    @property
    def device(self):
        return self.model.lm_head.weight.device

    @property
    def dtype(self):
        return self.model.lm_head.weight.dtype

    @property
    def image_size(self) -> int:
        return int(self.vision_config.image_size)

    @property
    def tower_grid(self) -> tuple[int, int]:
        s = self.vision_config.image_size // self.vision_config.patch_size
        return (s, s)

    @property
    def newline_policy(self) -> str:
        return SETTINGS[self.setting]["newline"]

    @property
    def grid(self) -> tuple[int, int]:
        h, w = self.tower_grid
        if SETTINGS[self.setting]["pool"] == "bilinear":
            return (math.ceil(h / 2), math.ceil(w / 2))
        return (h // 2, w // 2)

    @property
    def tokens_per_frame(self) -> int:
        h, w = self.grid
        return h * w

    @property
    def tower_tokens(self) -> int:
        h, w = self.tower_grid
        return h * w - (1 if self.config.vision_feature_select_strategy == "default" else 0)

    def arch_spec(self, name: Optional[str] = None, default_frames: int = 32):
        """costmodel ArchSpec of this model instance (for nominal schedules and FLOPs)."""
        from costmodel.arch import ArchSpec

        full = self.config.to_dict()
        d = {"model_type": full["model_type"], "tie_word_embeddings": full.get("tie_word_embeddings", False),
             "text_config": {k: v for k, v in full["text_config"].items() if isinstance(v, (int, float, str, bool))},
             "vision_config": {k: v for k, v in full["vision_config"].items() if isinstance(v, (int, float, str, bool))}}
        h, w = self.tower_grid
        d["_video"] = {"default_frames": default_frames, "grid": [h, w], "pooled_grid": list(self.grid),
                       "pooling": SETTINGS[self.setting]["pool"], "tokens_per_frame": self.tokens_per_frame,
                       "newline": self.newline_policy,
                       "vision_layers_run": len(self.model.model.vision_tower.encoder.layers)}
        return ArchSpec.from_hf_config(d, name or f"adapter-{self.setting}")

    # ---- video -----------------------------------------------------------------------------
    def load_video(self, path, frames: int):
        """Decode and preprocess a local video for this model (see methods.video_io)."""
        from methods.video_io import load_video

        return load_video(path, frames, self.image_size, self.image_mean, self.image_std)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        """(F, T, C) tower-grid tokens -> (F, N, C) pooled like the features."""
        F_, T, C = x.shape
        h, w = self.tower_grid
        g = x.reshape(F_, h, w, C).permute(0, 3, 1, 2).contiguous()
        if SETTINGS[self.setting]["pool"] == "bilinear":
            g = Fn.interpolate(g, size=list(self.grid), mode="bilinear")  # as HF apply_pooling
        else:
            g = Fn.avg_pool2d(g, kernel_size=2, stride=2)
        return g.permute(0, 2, 3, 1).reshape(F_, -1, C)

    def _feature_layer(self) -> int:
        vfl = self.config.vision_feature_layer
        if not isinstance(vfl, int):
            raise ValueError(f"only a single vision_feature_layer is supported, got {vfl!r}")
        n = len(self.model.model.vision_tower.encoder.layers)
        return vfl if vfl >= 0 else n + 1 + vfl  # index into hidden_states (0 = embeddings)

    def map_head(self):
        tower = self.model.model.vision_tower
        if getattr(tower, "use_head", False):
            return tower.head
        if self._map_head is None:
            from transformers.models.siglip.modeling_siglip import SiglipMultiheadAttentionPoolingHead

            gen_state = torch.random.get_rng_state()
            torch.manual_seed(self._map_head_seed)
            head = SiglipMultiheadAttentionPoolingHead(self.vision_config)
            torch.random.set_rng_state(gen_state)
            self._map_head = head.to(device=self.device, dtype=self.dtype).eval()
        return self._map_head

    @torch.no_grad()
    def encode_video(self, pixel_values: torch.Tensor, timestamps=None,
                     signals: Sequence[str] = ("vit_attn_received", "map_head_attn"), keys: bool = True,
                     frame_chunk: int = 8) -> VideoTokens:
        """(F, 3, S, S) normalised frames -> VideoTokens (features after projection + pooling)."""
        if pixel_values.dim() == 5:
            if pixel_values.shape[0] != 1:
                raise ValueError(f"batch size 1 only: got a batch of {pixel_values.shape[0]} videos")
            pixel_values = pixel_values[0]
        if pixel_values.dim() != 4:
            raise ValueError(f"pixel_values must be (F, 3, H, W), got {tuple(pixel_values.shape)}")
        # ---- in-ViT methods (STTS): the attached method runs the tower itself with its pruning hook
        # (methods.adapters.vision_prune) and returns VideoTokens carrying the keep mask.
        if self.method is not None and "in_vit" in getattr(self.method, "stages", ()):
            return self.method.encode_in_vit(self, pixel_values, timestamps)
        mm = self.model.model
        tower = mm.vision_tower
        pixel_values = pixel_values.to(device=self.device, dtype=self.dtype)
        F_ = pixel_values.shape[0]
        out = tower(pixel_values, output_hidden_states=True, return_dict=True)
        hs = out.hidden_states
        li = self._feature_layer()
        feat = hs[li]
        drop_first = self.config.vision_feature_select_strategy == "default"
        if drop_first:
            feat = feat[:, 1:]
        features = self._pool(mm.multi_modal_projector(feat))
        saliency: dict[str, torch.Tensor] = {}
        pooled_keys = None
        if li >= 1 and ("vit_attn_received" in signals or keys):
            layer = tower.encoder.layers[li - 1]
            attn = layer.self_attn
            received, kmeans = [], []
            for s in range(0, F_, frame_chunk):
                x = layer.layer_norm1(hs[li - 1][s:s + frame_chunk])
                B, T, _ = x.shape
                q = attn.q_proj(x).view(B, T, attn.num_heads, attn.head_dim).transpose(1, 2).float()
                k = attn.k_proj(x).view(B, T, attn.num_heads, attn.head_dim).transpose(1, 2).float()
                if "vit_attn_received" in signals:
                    a = torch.softmax((q @ k.transpose(-1, -2)) * attn.scale, dim=-1)  # (B, H, T, T)
                    received.append(a.mean(dim=(1, 2)))                              # (B, T)
                kmeans.append(k.mean(dim=1))                                           # (B, T, hd)
            if "vit_attn_received" in signals:
                r = torch.cat(received)
                r = r[:, 1:] if drop_first else r
                saliency["vit_attn_received"] = self._pool(r[..., None])[..., 0].float()
            if keys:
                kk = torch.cat(kmeans)
                kk = kk[:, 1:] if drop_first else kk
                pooled_keys = self._pool(kk).float()
        global_features = None
        if "map_head_attn" in signals:
            head = self.map_head()
            x = tower.post_layernorm(feat)
            probe = head.probe.repeat(F_, 1, 1)
            pooled, w = head.attention(probe, x, x, need_weights=True, average_attn_weights=True)
            pooled = pooled + head.mlp(head.layernorm(pooled))
            saliency["map_head_attn"] = self._pool(w[:, 0, :, None].float())[..., 0]
            global_features = pooled[:, 0].float()
        ts = None if timestamps is None else torch.as_tensor(timestamps, dtype=torch.float32)
        return VideoTokens(features=features, grid=self.grid, timestamps=ts, saliency=saliency,
                           global_features=global_features, keys=pooled_keys,
                           newline_policy=self.newline_policy)

    # ---- prompt ----------------------------------------------------------------------------
    def prompt_text(self, question: str, tokens: VideoTokens, duration: Optional[float] = None) -> str:
        user = f"{VIDEO_MARK}\n{question}"
        if SETTINGS[self.setting]["time_prompt"]:
            times = tokens.times().tolist()
            if duration is None:
                duration = float(times[-1]) if times else 0.0
            user = f"{VIDEO_MARK}{time_instruction(times, duration)}\n{question}"
        return qwen_chat(user)

    def _layout(self, tokens: VideoTokens, reduction: Optional[Reduction]):
        """Visual span: features, kinds and offsets (position inside the *unpruned* span)."""
        F_, N, D = tokens.features.shape
        h, w = tokens.grid
        policy = self.newline_policy
        dev = tokens.features.device
        if reduction is None:
            feats = tokens.features.reshape(F_ * N, D)
            src = torch.arange(F_ * N, device=dev)
        else:
            if reduction.features.shape[1] != D:
                raise ValueError(f"Reduction features have D={reduction.features.shape[1]}, model expects {D}")
            feats, src = reduction.features, reduction.source.to(dev)
            if src.numel() and (int(src.min()) < 0 or int(src.max()) >= F_ * N):
                raise ValueError(f"Reduction.source must lie in [0, {F_ * N}), got "
                                 f"[{int(src.min())}, {int(src.max())}]")
        newline = self.model.model.image_newline.to(feats.dtype)
        if policy == "one_token":
            offsets = torch.cat([src, torch.tensor([F_ * N], device=dev)])
            emb = torch.cat([feats, newline[None]])
            kinds = torch.cat([torch.full((feats.shape[0],), VISUAL), torch.tensor([NEWLINE])])
            span = F_ * N + 1
        elif policy == "grid":
            f, n = src // N, src % N
            row, col = n // w, n % w
            tok_off = f * h * (w + 1) + row * (w + 1) + col
            rows = torch.unique(f * h + row)          # (frame, row) pairs with >= 1 token, sorted
            nl_off = (rows // h) * h * (w + 1) + (rows % h) * (w + 1) + w
            offsets = torch.cat([tok_off, nl_off])
            emb = torch.cat([feats, newline[None].expand(rows.numel(), -1)])
            kinds = torch.cat([torch.full((feats.shape[0],), VISUAL), torch.full((rows.numel(),), NEWLINE)])
            order = torch.argsort(offsets, stable=True)
            offsets, emb, kinds = offsets[order], emb[order], kinds[order]
            span = F_ * h * (w + 1)
        else:
            offsets, emb, kinds, span = src, feats, torch.full((feats.shape[0],), VISUAL), F_ * N
        return emb, kinds, offsets, span

    @torch.no_grad()
    def build_inputs(self, question: str, tokens: VideoTokens, reduction: Optional[Reduction] = None,
                     duration: Optional[float] = None) -> PromptInputs:
        """Chat prompt with the video (or its reduction) spliced in, newlines laid out per policy.

        Positions: ``contiguous`` (0..L-1) unless ``reduction.positions == 'original'``, in which
        case each token gets the position its source had in the unpruned prompt."""
        if tokens.newline_policy != self.newline_policy:
            raise ValueError(f"VideoTokens newline policy {tokens.newline_policy!r} does not match the "
                             f"adapter setting {self.setting!r} ({self.newline_policy!r})")
        text = self.prompt_text(question, tokens, duration)
        before, after = text.split(VIDEO_MARK)
        pre_ids = encode_text(self.tokenizer, before)
        post_ids = encode_text(self.tokenizer, after)
        emb_layer = self.lm.embed_tokens
        dev = self.device
        vis, vkinds, offsets, span = self._layout(tokens, reduction)
        vis = vis.to(device=dev, dtype=self.dtype)
        pre = emb_layer(torch.tensor(pre_ids, device=dev, dtype=torch.long))
        post = emb_layer(torch.tensor(post_ids, device=dev, dtype=torch.long))
        embeds = torch.cat([pre, vis, post])[None]
        P, M, S = len(pre_ids), vis.shape[0], len(post_ids)
        kinds = torch.cat([torch.full((P,), TEXT), vkinds.cpu(), torch.full((S,), TEXT)]).to(dev)
        if reduction is not None and reduction.positions == "original":
            pos = torch.cat([torch.arange(P), P + offsets.cpu(), P + span + torch.arange(S)])
        else:
            pos = torch.arange(P + M + S)
        input_ids = None
        if reduction is None:
            input_ids = torch.tensor(pre_ids + [self.config.video_token_id] * M + post_ids, device=dev)[None]
        info = {"visual": int((vkinds == VISUAL).sum()), "newline": int((vkinds == NEWLINE).sum()),
                "text": P + S, "unpruned_span": span}
        if getattr(tokens, "vision_load", None) is not None:  # in-ViT pruning: the tower load it ran
            info["vision_load"] = tuple(tokens.vision_load)
        return PromptInputs(embeds, pos.to(dev), kinds, input_ids, frames=tokens.frames,
                            tower_tokens=self.tower_tokens, info=info)

    # ---- LLM ---------------------------------------------------------------------------------
    def _plan(self, plan):
        if plan is None and self.method is not None:
            plan = self.method.inner_plan(self.num_layers)
        if plan is not None:
            plan.validate(self.num_layers)
        return plan

    @torch.no_grad()
    def prefill(self, inputs: PromptInputs, plan: Optional[InnerPlan] = None, use_cache: bool = True,
                all_logits: bool = False, forced_keeps=None):
        """Run the prompt; returns (logits, PrefillResult). Logits: (vocab,) of the last token, or
        (L_out, vocab) for every surviving token when ``all_logits``."""
        plan = self._plan(plan)
        res = llm_prefill(self.lm, inputs.inputs_embeds, inputs.position_ids, inputs.kinds, plan,
                          use_cache=use_cache, forced_keeps=forced_keeps)
        hidden = res.hidden[0] if all_logits else res.hidden[0, -1]
        return self.model.lm_head(hidden).float(), res

    def schedule(self, inputs: PromptInputs, res: PrefillResult, decode_steps: int = 0,
                 label: str = "") -> TokenSchedule:
        """The TokenSchedule this prefill actually ran (mask mode: the alive tokens)."""
        tower_layers = len(self.model.model.vision_tower.encoder.layers)
        return TokenSchedule(
            frames=inputs.frames,
            vision=inputs.info.get("vision_load")  # recorded by in-ViT pruning (STTS), else full
            or uniform_vision(inputs.frames, self.tower_grid[0] * self.tower_grid[1], tower_layers),
            projector_tokens=inputs.frames * self.tower_tokens,
            llm_visual=tuple(res.llm_visual), llm_newline=tuple(res.llm_newline),
            text_tokens=res.text_tokens, decode_steps=decode_steps, label=label)

    @torch.no_grad()
    def generate(self, inputs: PromptInputs, max_new_tokens: int = 8, plan: Optional[InnerPlan] = None,
                 use_cache: bool = True, eos_token_id: Optional[int] = None) -> Generation:
        """Greedy decoding. ``use_cache=False`` recomputes the full prefix every step, replaying
        the kept sets chosen at prefill (the oracle for the ragged KV cache)."""
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        plan = self._plan(plan)
        logits, res = self.prefill(inputs, plan, use_cache=use_cache)
        first_logits = logits
        step_logits = [logits]
        tokens = [int(logits.argmax())]
        emb = self.lm.embed_tokens
        steps = 0
        while len(tokens) < max_new_tokens and (eos_token_id is None or tokens[-1] != eos_token_id):
            if use_cache:
                e = emb(torch.tensor([[tokens[-1]]], device=self.device))
                h = llm_decode_step(self.lm, e, res.cache, res.next_position + steps)
                logits = self.model.lm_head(h[0, -1]).float()
            else:
                gen = torch.tensor(tokens, device=self.device)
                embeds = torch.cat([inputs.inputs_embeds, emb(gen)[None]], dim=1)
                pos = torch.cat([inputs.position_ids, res.next_position + torch.arange(len(tokens), device=self.device)])
                kinds = torch.cat([inputs.kinds, torch.full((len(tokens),), TEXT, device=self.device)])
                r = llm_prefill(self.lm, embeds, pos, kinds, plan, use_cache=False,
                                forced_keeps=res.stage_keeps)
                logits = self.model.lm_head(r.hidden[0, -1]).float()
            step_logits.append(logits)
            tokens.append(int(logits.argmax()))
            steps += 1
        sched = self.schedule(inputs, res, decode_steps=steps,
                              label=getattr(self.method, "name", "") if self.method is not None else "")
        self.last_schedule = sched
        text = self.tokenizer.decode(tokens) if hasattr(self.tokenizer, "decode") else ""
        return Generation(tokens=tokens, schedule=sched, prefill_logits=first_logits, text=text,
                          step_logits=step_logits)

    # ---- whole pipeline ----------------------------------------------------------------------
    @torch.no_grad()
    def run(self, pixel_values: torch.Tensor, question: str, timestamps=None, max_new_tokens: int = 8,
            duration: Optional[float] = None, eos_token_id: Optional[int] = None) -> Generation:
        """encode -> attached method's pre-LLM reduction -> prompt -> generation with its inner plan."""
        tokens = self.encode_video(pixel_values, timestamps)
        reduction = None
        if self.method is not None and self.method.has_pre_llm:
            reduction = self.method.reduce(tokens)
        inputs = self.build_inputs(question, tokens, reduction, duration=duration)
        return self.generate(inputs, max_new_tokens=max_new_tokens, eos_token_id=eos_token_id)


def _strip_private(d):
    """Drop project keys (``_video``, ``_source...``) that are not HF config fields."""
    if isinstance(d, dict):
        return {k: _strip_private(v) for k, v in d.items() if not str(k).startswith("_")}
    return d


def _arch_config_dict(name: str) -> dict:
    """An HF config dict for a named full-size architecture: costmodel's shipped JSON if present,
    else the built-in dimensions above."""
    try:  # costmodel ships the paper models' HF configs as JSON (owned by another module)
        import costmodel

        f = Path(costmodel.__file__).parent / "archs" / f"{name}.json"
        if f.is_file():
            d = json.loads(f.read_text())
            if d.get("model_type") == EXPECTED_MODEL_TYPE:
                return d
            raise ValueError(f"architecture {name!r} has model_type {d.get('model_type')!r}; this adapter "
                             f"needs {EXPECTED_MODEL_TYPE!r}")
    except (ImportError, OSError, json.JSONDecodeError):  # pragma: no cover - costmodel absent
        pass
    if name not in _FULL_SIZE:
        raise ValueError(f"unknown architecture {name!r}; allowed: {sorted(_FULL_SIZE)} "
                         f"(or an HF config / dict)")
    return _FULL_SIZE[name]
