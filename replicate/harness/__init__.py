"""Measurement harnesses of the cpu and gpu tiers.

- :mod:`replicate.harness.options`: paper options of each method -> the options applied to a model
  of another depth (inner-LLM layer indices scaled from 28 layers), both recorded.
- :mod:`replicate.harness.accuracy`: one (method, retention) accuracy cell on SynthVideoQA with a
  trained tiny LLaVA-OV checkpoint.
- :mod:`replicate.harness.efficiency`: TTFT split (vision / other / LLM prefill), decode tokens/s
  and peak memory per method, beside the cost model's prediction for the same recorded schedule.
  ``python -m replicate.harness.efficiency --help`` needs only torch + transformers (GPU boxes).
"""
