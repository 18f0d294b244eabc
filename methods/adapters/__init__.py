"""Model adapters: one per model family. LLaVA-OneVision / LLaVA-Video via HF ``LlavaOnevision*``."""
from .llava_onevision import SETTINGS, Generation, LlavaOnevisionAdapter, PromptInputs
from .text import ByteTokenizer

__all__ = ["LlavaOnevisionAdapter", "PromptInputs", "Generation", "SETTINGS", "ByteTokenizer"]
