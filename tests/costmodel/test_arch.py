"""ArchSpec from the shipped HF-style configs."""
import pytest

from costmodel import ARCH_NAMES, load_arch, load_config, tiny_arch, tiny_config
from costmodel.arch import ArchSpec


def test_qwen2_7b_dimensions():
    a = load_arch("llava-onevision-7b")
    assert (a.llm.hidden, a.llm.intermediate, a.llm.layers, a.llm.heads, a.llm.kv_heads, a.llm.head_dim) == \
        (3584, 18944, 28, 28, 4, 128)
    assert a.llm.kv_dim == 512
    assert (a.vision.hidden, a.vision.layers, a.vision.grid, a.vision.patches_per_frame) == (1152, 26, (27, 27), 729)
    assert a.projector == ((1152, 3584), (3584, 3584))
    assert (a.pooled_grid, a.tokens_per_frame, a.newline, a.default_frames) == ((14, 14), 196, "one_token", 32)


def test_other_archs():
    a72 = load_arch("llava-onevision-72b")
    assert (a72.llm.hidden, a72.llm.intermediate, a72.llm.layers, a72.llm.kv_heads, a72.llm.vocab) == \
        (8192, 29568, 80, 8, 152064)
    v = load_arch("llava-video-7b")
    assert (v.pooled_grid, v.newline, v.default_frames, v.pooling) == ((13, 13), "grid", 64, "average")
    q = load_arch("qwen2.5-vl-7b")
    assert (q.vision.layers, q.vision.mlp, q.vision.window_tokens, q.vision.full_attention_layers) == \
        (32, "swiglu", 64, (7, 15, 23, 31))
    assert q.projector == ((5120, 5120), (5120, 3584))
    m = load_arch("molmo2-4b")
    assert (m.llm.hidden, m.llm.q_dim, m.llm.kv_dim, m.llm.layers, m.tokens_per_frame, m.vision.grid) == \
        (2560, 4096, 1024, 36, 81, (27, 27))
    assert m.llm.qk_norm and not m.llm.qkv_bias
    assert any("UNCERTAIN" in n for n in m.notes)  # _source notes are carried


@pytest.mark.parametrize("name", ARCH_NAMES)
def test_every_config_is_hf_shaped_and_loads(name):
    cfg = load_config(name)
    assert {"text_config", "vision_config", "_video", "model_type"} <= set(cfg)
    a = load_arch(name)
    assert isinstance(a, ArchSpec) and a.name == name
    t = tiny_arch(name)
    assert t.family == a.family and t.llm.hidden == 128 and t.newline == a.newline
    assert tiny_config(name)["model_type"] == cfg["model_type"]


def test_unknown_name_lists_allowed():
    with pytest.raises(ValueError, match="unknown architecture 'gpt'.*llava-onevision-7b.*molmo2-4b"):
        load_arch("gpt")


def test_tiny_llava_config_builds_hf_model():
    from transformers import LlavaOnevisionConfig

    cfg = {k: v for k, v in tiny_config("llava-onevision-7b").items() if not k.startswith("_")}
    c = LlavaOnevisionConfig(**cfg)
    assert c.text_config.hidden_size == 128 and c.vision_config.image_size == 56
