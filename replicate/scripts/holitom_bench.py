"""Rule holitom_bench: HoliTom Stages I-II on a full-size LLaVA-OV video on CPU
(replicate.microbench.holitom_stages) -> results/bench/holitom_stages.json."""
from replicate.io import write_json
from replicate.microbench.holitom_stages import run

sm = snakemake  # noqa: F821
b = dict(sm.params.bench)
with open(sm.log[0], "w") as log:
    res = run(int(b.get("frames", 32)), int(b.get("grid", 14)), int(b.get("dim", 3584)),
              list(b.get("retentions", [0.1, 0.25])), float(b.get("static_fraction", 0.5)),
              int(b.get("repeats", 5)), int(b.get("threads", 1)), config=sm.config)
    for k, v in res["results"].items():
        print(f"{k}: stage I {v['stage1']['median_s'] * 1e3:.1f} ms, stages I-II "
              f"{v['stages_1_2']['median_s'] * 1e3:.1f} ms, kept {v['kept_tokens']}/{v['input_tokens']}", file=log)
    write_json(sm.output[0], res)
