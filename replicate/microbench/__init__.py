"""Micro-benchmarks, in one place: each writes JSON with its provenance (numbers for the record,
never a timed unit test), runs as ``python -m replicate.microbench.<name>``, and imports the
methods it times (the library packages import nothing from here).

- :mod:`replicate.microbench.methods`: every pre-LLM reduction at full size; the adapters'
  overhead against HF's forward (``results/bench/methods.json``);
- :mod:`replicate.microbench.holitom_stages`: HoliTom Stages I-II at full size (rule holitom_bench);
- :mod:`replicate.microbench.tango`: Tango's pre-LLM step against a plain reference of the released
  code (:mod:`replicate.microbench.tango_reference`; equal output checked on every run);
- :mod:`replicate.microbench.video_io`: peak memory of ``methods.video_io.load_video`` on a long video;
- :mod:`replicate.microbench.snakemake_parse`: wall time of ``snakemake -n`` on the default target
  and whether parsing the workflow imported torch;
- :mod:`replicate.microbench.reduction_ops`: aten ops, kernels and host syncs (with call sites) of
  every reduction at the papers' shapes, counted by :mod:`replicate.microbench.optrace` on the
  seeded videos of :mod:`replicate.microbench.videos` (rule reduction_ops); one prefill's per-layer
  overhead;
- :mod:`replicate.microbench.reduction_times`: CPU time of every reduction on the three kinds of
  video, Tango against the released reference in the same process (run by hand, docs/measured/).
"""
