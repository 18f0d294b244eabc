"""Measurement harnesses of the cpu and gpu tiers.

- :mod:`replicate.harness.options`: a cell's options on a model adapter (``cell_setting``: the
  Method's own ``from_setting`` with the adapter's depths and layout; paper and applied values both
  recorded) and the retention tags of result paths.
- :mod:`replicate.harness.accuracy`: one (method, retention) accuracy cell on SynthVideoQA with a
  trained tiny LLaVA-OV checkpoint.
- :mod:`replicate.harness.efficiency`: TTFT split (vision / other / LLM prefill), decode tokens/s
  and peak memory per method, beside the cost model's prediction for the same recorded schedule.
  ``python -m replicate.harness.efficiency --help`` needs only torch + transformers (GPU boxes).
"""
