"""Compare one benchmark's rules with an lmms-eval release's own task functions.

``compare(protocol, benchmark, release, ours, docs, replies, root)`` loads ``docs`` through the
project's loader (written into ``root`` in the loader's layout), then counts disagreements of four
kinds: ``prompt`` (byte for byte, per wrapper of the protocol), ``extracted`` (the answer the release
records: a letter, '' or EgoSchema's index; for MVBench, which records no extracted letter, the
vector of mcq_acc scores against every gold letter A-E), ``score`` (per question) and ``aggregate``
(the release's aggregation over every (document, reply) pair; MVBench per sub-task; compared in
percent within 1e-9, and, for the project's rules, in the release's own unit). The replies cycle over
the documents (reply j goes with document j mod n) in one pass, Python's ``random`` seeded with the
protocol's seed before the release's pass, as lmms-eval's simple_evaluate does.

``ours`` is any object with ``prompt(sample, wrapper) -> str`` and ``score(protocol, samples,
replies) -> (views, corrects, aggregate_percent, aggregate_release_unit_or_None, per_task_percent)``;
``ProjectRules`` below is the project's (replicate.benchmarks.protocol_rules).
"""
from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LETTERS = "ABCDE"


@dataclass
class Bench:
    task: str                 # folder under lmms_eval/tasks
    text_fn: str              # doc_to_text function
    process_fn: str
    yaml: str                 # the task YAML of the prompt (and generation settings)


BENCHES = {
    "videomme": Bench("videomme", "videomme_doc_to_text", "videomme_process_results", "videomme.yaml"),
    "mvbench": Bench("mvbench", "mvbench_doc_to_text", "mvbench_process_results", "mvbench_{subtask}.yaml"),
    "egoschema": Bench("egoschema", "egoschema_doc_to_text", "egoschema_process_results_generation", "egoschema.yaml"),
    "longvideobench": Bench("longvideobench", "longvideobench_doc_to_text", "longvideobench_process_results",
                            "longvideobench_val_v.yaml"),
    "mlvu": Bench("mlvu", "mlvu_doc_to_text", "mlvu_process_results", "mlvu_dev.yaml"),
    "lvbench": Bench("lvbench", "lvbench_doc_to_text", "lvbench_process_results", "lvbench.yaml"),
}


# ----------------------------------------------------------------------------- docs -> our samples
def write_layout(name: str, docs: list[dict], root: Path) -> None:
    """Write ``docs`` where the project's loader for ``name`` reads the HF copy's layout."""
    root.mkdir(parents=True, exist_ok=True)
    clean = [{k: v for k, v in d.items() if not k.startswith("_")} for d in docs]
    if name == "videomme":
        (root / "videomme").mkdir(exist_ok=True)
        (root / "videomme" / "test.json").write_text(json.dumps(clean))
    elif name == "mvbench":
        (root / "json").mkdir(exist_ok=True)
        by_task: dict[str, list] = {}
        for d, c in zip(docs, clean):
            by_task.setdefault(d["_subtask"], []).append(c)
        for task, rows in by_task.items():
            (root / "json" / f"{task}.json").write_text(json.dumps(rows))
    elif name == "egoschema":
        (root / "Subset").mkdir(exist_ok=True)
        (root / "Subset" / "test.json").write_text(json.dumps(clean))
    elif name == "longvideobench":
        (root / "validation.json").write_text(json.dumps(clean))
    elif name == "mlvu":
        (root / "test.json").write_text(json.dumps(clean))
    elif name == "lvbench":
        (root / "data").mkdir(exist_ok=True)
        (root / "data" / "train.jsonl").write_text("".join(json.dumps(c) + "\n" for c in clean))
    else:
        raise ValueError(name)


def load_samples(name: str, docs: list[dict], root: Path):
    """The project's samples of ``docs``, in the documents' order (read, not video-checked)."""
    from replicate.benchmarks.registry import get_benchmark

    write_layout(name, docs, root)
    samples, _ = get_benchmark(name).read(root, None)
    if name == "mvbench":
        counters: dict[str, int] = {}
        keys = []
        for d in docs:
            i = counters.get(d["_subtask"], 0)
            counters[d["_subtask"]] = i + 1
            keys.append(f"{d['_subtask']}/{i}")
        by_id = {s.sample_id: s for s in samples}
        return [by_id[k] for k in keys]
    if len(samples) != len(docs):
        raise AssertionError(f"{name}: the loader read {len(samples)} samples from {len(docs)} documents")
    return list(samples)


# ----------------------------------------------------------------------------- the release's side
def release_prompt(bench: Bench, utils, doc: dict, kwargs) -> str:
    fn = getattr(utils, bench.text_fn)
    return fn(doc, dict(kwargs)) if kwargs is not None else fn(doc)


def release_one(name: str, utils, doc: dict, reply: str) -> tuple[Any, bool, Any]:
    """(extracted view, correct, aggregation item) of one reply, by the release's process_results."""
    r = getattr(utils, BENCHES[name].process_fn)(doc, [reply])
    if name == "videomme":
        item = r["videomme_perception_score"]
        return item["pred_answer"], item["pred_answer"] == item["answer"], item
    if name == "mvbench":
        item = r["mvbench_accuracy"]
        view = tuple(bool(utils.mcq_acc(letter, reply)) for letter in LETTERS)
        return view, bool(item["score"]), item
    if name == "egoschema":
        item = r["score"]
        return item["pred"], str(item["ground_truth"]) == str(item["pred"]), item
    if name == "longvideobench":
        item = r["lvb_acc"]
        return item["parsed_pred"], item["parsed_pred"] == item["answer"], item
    if name == "mlvu":
        item = next(v for k, v in r.items() if k.startswith("mlvu_perc"))
        return item["pred_answer"], item["pred_answer"] == item["answer"], item
    if name == "lvbench":
        return utils.extract_characters_regex(reply), bool(r["lvbench_score"]), r["lvbench_score"]
    raise ValueError(name)


def release_aggregate(name: str, utils, items: list, docs: list[dict]) -> tuple[float, dict[str, float]]:
    """(the release's aggregate, per sub-task for MVBench) in the release's own unit."""
    if name == "videomme":
        return utils.videomme_aggregate_results(items), {}
    if name == "mvbench":
        per: dict[str, list] = {}
        for d, item in zip(docs, items):
            per.setdefault(d["_subtask"], []).append(item)
        return math.nan, {t: utils.mvbench_aggregate_results(v) for t, v in sorted(per.items())}
    if name == "egoschema":
        return utils.egoschema_aggregate_score(items, None), {}
    if name == "longvideobench":
        return utils.longvideobench_aggregate_results(items), {}
    if name == "mlvu":
        return utils.mlvu_aggregate_results_dev(items), {}
    if name == "lvbench":  # aggregation: mean (lmms_eval/api/metrics.py: sum(arr) / len(arr))
        return sum(items) / len(items), {}
    raise ValueError(name)


# ----------------------------------------------------------------------------- the project's side
class ProjectRules:
    """replicate.benchmarks.protocol_rules, as the paper tier runs it."""

    def prompt(self, protocol, sample, wrapper: str) -> str:
        from replicate.benchmarks.protocol_rules import prompt_for

        return prompt_for(sample, protocol, wrapper)

    def score(self, protocol, samples, replies):
        from replicate.benchmarks.protocol_rules import mvbench_process, score_replies

        result = score_replies(protocol, samples, replies)
        views = []
        for o in result.outcomes:
            if o.sample.benchmark == "mvbench":
                views.append(tuple(o.extraction.answer == mvbench_process(letter) for letter in LETTERS))
            elif o.sample.benchmark == "egoschema":
                views.append(-1 if o.extraction.index is None else o.extraction.index)
            else:
                views.append(o.extraction.answer)
        unit_factor = 100 if result.unit == "fraction" else 1
        per_task = {t: v * unit_factor for t, v in result.per_task.items()}
        return views, [o.correct for o in result.outcomes], result.percent, result.release_score, per_task


@dataclass
class Report:
    counts: dict[str, int] = field(default_factory=lambda: {"prompt": 0, "extracted": 0, "score": 0, "aggregate": 0})
    compared: dict[str, int] = field(default_factory=lambda: {"prompt": 0, "extracted": 0, "score": 0, "aggregate": 0})
    examples: list[str] = field(default_factory=list)

    def check(self, kind: str, equal: bool, what: str) -> None:
        self.compared[kind] += 1
        if not equal:
            self.counts[kind] += 1
            if len(self.examples) < 12:
                self.examples.append(f"{kind}: {what}")

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def compare(protocol, name: str, release, ours, docs: list[dict], replies: list[str], root: Path,
            wrappers: list[tuple[str, str]]) -> Report:
    """Disagreements of ``ours`` with ``release`` on benchmark ``name`` (see the module doc).
    ``wrappers``: (the protocol's wrapper name, the lmms-eval --model name whose kwargs apply)."""
    rep = Report()
    bench = BENCHES[name]
    utils = release.utils(bench.task)
    samples = load_samples(name, docs, root)
    with release.active():
        for doc, sample in zip(docs, samples):
            cfg, _ = release.task_config(bench.task, bench.yaml.format(subtask=doc.get("_subtask")))
            for ours_wrapper, model_name in wrappers:
                theirs = release_prompt(bench, utils, {k: v for k, v in doc.items() if not k.startswith("_")},
                                        release.model_kwargs(cfg, model_name))
                mine = ours.prompt(protocol, sample, ours_wrapper)
                rep.check("prompt", mine == theirs, f"{sample.sample_id} [{ours_wrapper}]: {mine!r} != {theirs!r}")
        pairs = [(docs[j % len(docs)], samples[j % len(docs)], r) for j, r in enumerate(replies)]
        random.seed(protocol.seed)
        theirs = [release_one(name, utils, {k: v for k, v in d.items() if not k.startswith("_")}, r) for d, _, r in pairs]
        value, per_task = release_aggregate(name, utils, [t[2] for t in theirs], [d for d, _, _ in pairs])
    views, corrects, percent, native, my_tasks = ours.score(protocol, [s for _, s, _ in pairs], [r for _, _, r in pairs])
    for (d, s, r), (view, correct, _), mine_view, mine_correct in zip(pairs, theirs, views, corrects):
        rep.check("extracted", mine_view == view, f"{s.sample_id} {r!r}: ours {mine_view!r}, release {view!r}")
        rep.check("score", bool(mine_correct) == bool(correct), f"{s.sample_id} {r!r}: ours {mine_correct}, release {correct}")
    unit = protocol.task(name).unit if hasattr(protocol, "task") else "percent"
    if name == "mvbench":
        for task, v in per_task.items():
            rep.check("aggregate", math.isclose(my_tasks.get(task, math.nan), v, abs_tol=1e-9),
                      f"mvbench {task}: ours {my_tasks.get(task)}, release {v}")
    else:
        release_percent = value * 100 if unit == "fraction" else value
        same = math.isclose(percent, release_percent, abs_tol=1e-9)
        if native is not None:
            same = same and math.isclose(native, value, abs_tol=1e-12)
        rep.check("aggregate", same, f"{name}: ours {percent} ({native}), release {value}")
    return rep
