"""Model adapters on one protocol (:mod:`methods.adapters.base`), one module per model family.
LLaVA-OneVision / LLaVA-Video via HF ``LlavaOnevision*``: :mod:`methods.adapters.llava_onevision`;
Molmo2 (STTS's backbone) via HF ``Molmo2ForConditionalGeneration``: :mod:`methods.adapters.molmo2`;
Qwen2.5-VL via HF ``Qwen2_5_VLForConditionalGeneration``: :mod:`methods.adapters.qwen2_5_vl`."""
from .base import Generation, PromptInputs, VideoLLMAdapter
from .llava_onevision import SETTINGS, LlavaOnevisionAdapter
from .qwen2_5_vl import QWEN2_5_VL_METHODS, Qwen2_5_VLAdapter
from .text import ByteTokenizer

__all__ = ["LlavaOnevisionAdapter", "Qwen2_5_VLAdapter", "QWEN2_5_VL_METHODS", "PromptInputs", "Generation",
           "SETTINGS", "ByteTokenizer", "VideoLLMAdapter"]
