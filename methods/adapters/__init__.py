"""Model adapters on one protocol (:mod:`methods.adapters.base`), one module per model family.
LLaVA-OneVision / LLaVA-Video via HF ``LlavaOnevision*``: :mod:`methods.adapters.llava_onevision`;
Molmo2 (STTS's backbone) via HF ``Molmo2ForConditionalGeneration``: :mod:`methods.adapters.molmo2`."""
from .base import Generation, PromptInputs, VideoLLMAdapter
from .llava_onevision import SETTINGS, LlavaOnevisionAdapter
from .text import ByteTokenizer

__all__ = ["LlavaOnevisionAdapter", "PromptInputs", "Generation", "SETTINGS", "ByteTokenizer",
           "VideoLLMAdapter"]
