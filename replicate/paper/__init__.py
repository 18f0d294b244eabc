"""The paper tier: benchmark accuracy of real checkpoints on the papers' benchmarks, from local copies.

- :mod:`replicate.paper.cells`: which accuracy cells (checkpoint, frames, method, retention,
  benchmark) the paper-tier claims need, and where each cell's shards and summary live.
- :mod:`replicate.paper.checkpoints`: loading a local HF checkpoint (``paths.checkpoints.<name>``)
  and the SigLIP so400m MAP head (``paths.checkpoints.siglip-so400m``).
- :mod:`replicate.paper.shard`: one shard of one cell (per-sample predictions JSONL), the cell
  summary and the accuracy table the evaluators read.
- :mod:`replicate.paper.evaluators`: the ``lmms_eval_*`` claim evaluators and the per-paper
  definition of "performance kept".
- :mod:`replicate.paper.rehearsal`: tiny random-weight checkpoints and benchmark fixtures in the
  real on-disk layouts, so the whole tier runs before anyone has a GPU.
"""
