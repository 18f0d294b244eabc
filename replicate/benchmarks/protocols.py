"""Evaluation protocols: how each paper scored its benchmarks, as data.

A protocol is fixed by the evaluation code a paper ran (its release, read at a named commit or
PyPI version) and says, per (benchmark, model wrapper): the prompt text, the answer extraction
(random fallback included, seeded as that release seeds it), the aggregation and its denominators,
max new tokens, the split and question set, clip windows and subtitles; per wrapper: how it frames
the prompt and samples frames. The rules themselves are code in ``protocol_rules.py``; the parity
tests (``tests/parity``) hold them equal to the releases' own task code downloaded from PyPI.

Claims name their protocol (``claims.yaml``: ``protocol``); paper-tier cells are keyed by it
(``results/paper/cells/<protocol>/...``), so changing a claim's protocol computes new cells and
rewrites nothing already computed. ``check_claim_protocol`` refuses, at claims-load time, an unknown
protocol, a benchmark the protocol does not define, and a wrapper that does not fit the model.

Sources read (facts and strings carried over; no code copied):

* lmms-eval wheels from PyPI, ``pip download --no-deps lmms-eval==X``: 0.3.0 (sha256 8f9aa9a5...),
  0.7.1 (1f493009...), 0.7.3 (5709f9f9...; the newest on PyPI when read), ``lmms_eval/tasks/*`` and
  ``lmms_eval/models/{llava_onevision,llava_vid}.py`` / ``models/simple/llava_onevision.py``;
* cokeshao/HoliTom @ e9b2972f6895c9e7d7fe74eb8c3a2ecaab8056e0: ``lmms_eval/tasks/{videomme,mvbench,
  egoschema,longvideobench,mlvu}`` are byte-identical to the 0.3.0 wheel's; its
  ``lmms_eval/models/llava_onevision.py`` and ``llava_vid.py`` differ from 0.3.0's only by the
  ``WRAPPER`` hook that wraps the model; ``scripts/eval_*.sh`` (tasks, wrappers, model args);
* xjtupanda/Tango @ cc815b6e6762f6cf54ae20fafefd4d5bc02f2aef: ``README.md`` (accuracy with VLMEvalKit,
  efficiency with lmms-eval), ``lmms-eval/`` (``pyproject.toml`` version 0.7.1), ``VLMEvalKit/run_eval_*.sh``,
  ``VLMEvalKit/vlmeval/dataset/{videomme,mvbench,mlvu,longvideobench}.py``,
  ``VLMEvalKit/vlmeval/dataset/utils/videomme.py``, ``VLMEvalKit/vlmeval/vlm/llava/llava.py``;
* allenai/molmo2 @ f3cb1085fbb97c4a4d7fdcadd77cf871bf37a88a: ``olmo/eval/eval_utils.py`` (its own
  harness, not lmms-eval). allenai/STTS itself could not be read (no snapshot available).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from .base import BENCHMARKS

HOLITOM_COMMIT = "e9b2972f6895c9e7d7fe74eb8c3a2ecaab8056e0"
TANGO_COMMIT = "cc815b6e6762f6cf54ae20fafefd4d5bc02f2aef"
MOLMO2_COMMIT = "f3cb1085fbb97c4a4d7fdcadd77cf871bf37a88a"
#: the newest lmms-eval on PyPI when the protocols were read (README: "what differs from the newest")
NEWEST_LMMS_EVAL = "0.7.3"
#: sha256 of the wheels read (the parity tests print the digest of what they download beside these)
WHEEL_SHA256 = {
    "0.3.0": "8f9aa9a5111a0d68d593ccda03330648bb4b3f4a12785ea1e48fd048ffc0f438",
    "0.7.1": "1f4930091397b25b9f1c5e04c52a9dd890a9da5b4315f4ab919436afb580b619",
    "0.7.3": "5709f9f9f56a8f5f22bf379571bd1c5e7702af5ae2bbb9637001c5dd91168895",
}
#: model (costmodel/archs name) -> config.json model_type of its family
MODEL_FAMILY = {"llava-onevision-7b": "llava_onevision", "llava-onevision-72b": "llava_onevision",
                "llava-video-7b": "llava_onevision", "qwen2.5-vl-7b": "qwen2_5_vl", "molmo2-4b": "molmo2"}
#: frame sampling rules (methods/video_io.py implements each)
FRAME_SAMPLING = ("linspace_round", "linspace_floor", "fps1_then_linspace_floor")


@dataclass(frozen=True)
class Wrapper:
    """How a model wrapper of the harness turns a task prompt into a request."""

    name: str                       # the harness's model name (--model)
    models: tuple[str, ...]         # paper models (costmodel/archs names) it fits
    time_instruction: tuple[str, ...]  # models that get LLaVA-Video's "The video lasts for ..." sentence
    frame_sampling: str             # see FRAME_SAMPLING
    default_max_new_tokens: int     # when the task sets none
    strip_reply: bool               # the wrapper strips the decoded reply before scoring
    source: str


@dataclass(frozen=True)
class TaskRule:
    """One benchmark under one protocol (rule names index protocol_rules' tables)."""

    benchmark: str                  # loader name (replicate.benchmarks)
    task: str                       # the release's task name
    prompt: str                     # protocol_rules.PROMPTS key
    kwargs: Mapping[str, Mapping[str, str]]  # lmms_eval_specific_kwargs: wrapper name or "default"
    extract: str                    # protocol_rules.extract rule
    aggregate: str                  # protocol_rules.AGGREGATIONS key
    unit: str                       # "percent" or "fraction": what the release's aggregate returns
    max_new_tokens: Optional[int]   # the task's generation_kwargs; None: the wrapper's default
    split: str
    question_set: str
    source: str
    fallback: str = "none"          # "random": unparseable replies get a seeded random letter
    clip: str = "as stored"         # MVBench: "segment" (the clip [start, end], never the whole video)
    subtitles: bool = False
    offline: Optional[str] = None   # the paper's set cannot be scored offline: what is scored instead
    headline: str = ""

    def kwargs_for(self, wrapper: str) -> dict[str, str]:
        """lmms-eval's choice: the wrapper's own kwargs if the task names it, else "default"."""
        return dict(self.kwargs.get(wrapper, self.kwargs.get("default", {})))


@dataclass(frozen=True)
class Protocol:
    name: str
    paper: str
    harness: str
    release: str
    summary: str
    wrappers: Mapping[str, Wrapper]
    tasks: Mapping[str, TaskRule]
    seed: int                        # Python ``random`` seed of the release's run (random fallback)
    seed_source: str
    differs_from_newest: str
    stand_in: Optional[str] = None   # set when the paper's own protocol could not be read
    notes: tuple[str, ...] = field(default_factory=tuple)

    def wrapper_for(self, model: str, requested: Optional[str] = None) -> Wrapper:
        """The wrapper a model runs under (``requested`` checked); ValueError naming what fits."""
        fitting = [w for w in self.wrappers.values() if model in w.models]
        if requested is not None:
            if requested not in self.wrappers:
                raise ValueError(f"protocol {self.name!r} has no wrapper {requested!r}; "
                                 f"allowed: {', '.join(self.wrappers)}")
            if model not in self.wrappers[requested].models:
                raise ValueError(f"wrapper {requested!r} of protocol {self.name!r} does not fit model {model!r} "
                                 f"(family {MODEL_FAMILY.get(model, 'unknown')}); allowed for it: "
                                 f"{', '.join(w.name for w in fitting) or 'none'}")
            return self.wrappers[requested]
        if not fitting:
            raise ValueError(f"protocol {self.name!r} has no wrapper for model {model!r}; its wrappers fit "
                             f"{', '.join(sorted({m for w in self.wrappers.values() for m in w.models}))}")
        return fitting[0]

    def task(self, benchmark: str) -> TaskRule:
        if benchmark not in self.tasks:
            raise ValueError(f"protocol {self.name!r} does not define benchmark {benchmark!r}; "
                             f"it defines: {', '.join(self.tasks)}")
        return self.tasks[benchmark]

    def max_new_tokens(self, benchmark: str, wrapper: Wrapper) -> int:
        rule = self.task(benchmark)
        return rule.max_new_tokens if rule.max_new_tokens is not None else wrapper.default_max_new_tokens


# ------------------------------------------------------------------------------ shared strings
ANSWER_DIRECTLY = "Answer with the option's letter from the given choices directly."
ONLY_BEST = "Only give the best option.\n"
LLAVA_OV_MODELS = ("llava-onevision-7b", "llava-onevision-72b")
_W030 = f"lmms-eval 0.3.0 lmms_eval/models/{{}}.py (== cokeshao/HoliTom@{HOLITOM_COMMIT[:7]} but for the WRAPPER hook)"


def _lmms_wrappers(version: str, simple: str) -> dict[str, Wrapper]:
    """llava_onevision and llava_vid as lmms-eval ``version`` defines them (``simple``: the folder)."""
    ov = Wrapper("llava_onevision", LLAVA_OV_MODELS, (), "linspace_floor", 1024, True,
                 f"lmms-eval {version} lmms_eval/models/{simple}llava_onevision.py: '<image>\\n' + prompt in "
                 f"the conv template, frames np.linspace(0, n-1, F, dtype=int), max_new_tokens 1024 unless the "
                 f"task sets it, replies .strip()ped")
    vid = Wrapper("llava_vid", ("llava-video-7b",), (), "fps1_then_linspace_floor", 1024, True,
                  f"lmms-eval {version} lmms_eval/models/{simple}llava_vid.py: add_time_instruction=False and "
                  f"video_fps=1 by default (HoliTom's scripts set neither): one frame per second, "
                  f"np.linspace(..., dtype=int) to max_frames_num when there are more")
    return {"llava_onevision": ov, "llava_vid": vid}


def _mvbench(version: str, source: str) -> TaskRule:
    return TaskRule(
        "mvbench", "mvbench (group of 20 mvbench_<sub_task> tasks)", "mvbench", {"default": {"post_prompt": ONLY_BEST}},
        "mvbench_process", "mvbench_tasks", "percent", 16, "train (per sub-task)",
        "OpenGVLab/MVBench, 20 sub-tasks x 200 (4,000)", source, clip="segment",
        headline=f"lmms-eval {version} prints each sub-task's score (an empty reply left out of its "
                 f"denominator) and no group score; the papers' MVBench column is their mean")


def _longvideobench(source: str) -> TaskRule:
    return TaskRule(
        "longvideobench", "longvideobench_val_v", "longvideobench",
        {"default": {"pre_prompt": "", "post_prompt": ANSWER_DIRECTLY + "\n"}}, "lvb_random", "lvb_fraction",
        "fraction", 32, "validation", "LongVideoBench val, 1,337 questions, no subtitles", source, fallback="random",
        headline="overall accuracy as a fraction rounded to 5 decimals")


def _egoschema_rule(version: str, max_new: Optional[int], source: str) -> TaskRule:
    return TaskRule(
        "egoschema", "egoschema", "egoschema", {"default": {"pre_prompt": "", "post_prompt": "\n" + ANSWER_DIRECTLY}},
        "mmmu_random", "fraction", "fraction", max_new, "test (GENERATION)",
        "EgoSchema full set, 5,031 questions, answers private: scored by uploading the predictions to the "
        "EgoSchema submission server", source, fallback="random",
        offline=f"protocol differs: public subset: offline only the 500-question public subset has answers; "
                f"it is scored as lmms-eval {version}'s egoschema_subset task (same prompt, parser and "
                f"generation settings, local answers, accuracy as a fraction), a different question set from "
                f"the paper's 5,031",
        headline="no local score for the full set; egoschema_subset: correct / n as a fraction")


def _videomme(extract: str, source: str) -> TaskRule:
    return TaskRule(
        "videomme", "videomme", "videomme",
        {"default": {"pre_prompt": "", "post_prompt": "\n" + ANSWER_DIRECTLY},
         "llava_vid": {"pre_prompt": "", "post_prompt": "The best answer is:"}},
        extract, "micro_percent", "percent", 16, "test", "Video-MME, 2,700 questions, without subtitles", source,
        headline="100 x correct / answered over every question")


# ------------------------------------------------------------------------------ the protocols
def _holitom() -> Protocol:
    src = "lmms-eval 0.3.0 lmms_eval/tasks/{}/ (utils.py + yaml; == HoliTom's bundled copy)"
    return Protocol(
        name="holitom-lmms-eval-0.3.0", paper="holitom", harness="lmms-eval", release="0.3.0",
        summary="lmms-eval 0.3.0 as bundled in cokeshao/HoliTom: tasks mvbench, egoschema, videomme, "
                "longvideobench_val_v; --model llava_onevision (OV-7B, OV-72B) or llava_vid (LLaVA-Video-7B)",
        wrappers={**_lmms_wrappers("0.3.0", "")},
        tasks={
            "videomme": _videomme("prefix_regex", src.format("videomme")),
            "mvbench": _mvbench("0.3.0", src.format("mvbench")),
            "egoschema": _egoschema_rule("0.3.0", None, src.format("egoschema") + " (no generation_kwargs: the "
                                         "wrapper's 1,024 new tokens)"),
            "longvideobench": _longvideobench(src.format("longvideobench")),
        },
        seed=0, seed_source="lmms_eval/evaluator.py simple_evaluate(random_seed=0): random.seed(0) before the run",
        differs_from_newest=(
            "VideoMME and LVBench answers: first capital A-D after removing prefixes (0.7.3: ranked formats, last "
            "occurrence); EgoSchema: no generation_kwargs (1,024 new tokens; 0.7.3: 16); VideoMME on llava_vid "
            "ends 'The best answer is:' (unchanged in 0.7.3); no lvbench or mlvu_dev task (0.3.0's mlvu reads "
            "another dataset, sy1998/temp)"),
        notes=("HoliTom ran 8 processes (accelerate --num_processes=8); each seeds Python's random with 0 and "
               "draws for its own documents (every 8th), so the paper's random fallback draws cannot be replayed; "
               "here one stream per cell draws in document order (one process).",
               "72B: --num_processes=1 with device_map=auto over 8 GPUs (scripts/eval_ov-72b_holitom.sh)."),
    )


def _lmms_eval_07(version: str, name: str, paper: str, extract_new: bool) -> Protocol:
    src = f"lmms-eval {version} lmms_eval/tasks/{{}}/"
    extract = "mcq_v073" if extract_new else "prefix_regex"
    # lvbench.yaml's default (utils.py's own fallback, used only without one, ends with a period)
    lvbench_post = "\nAnswer the question with the option letter"
    tasks = {
        "videomme": _videomme(extract, src.format("videomme")),
        "mvbench": _mvbench(version, src.format("mvbench")),
        "egoschema": _egoschema_rule(version, 16, src.format("egoschema") + " (_default_template_yaml: 16 new tokens)"),
        "longvideobench": _longvideobench(src.format("longvideobench")),
        "mlvu": TaskRule(
            "mlvu", "mlvu_dev", "mlvu_dev", {"default": {"pre_prompt": "", "post_prompt": "\n" + ONLY_BEST + "Best option: ("}},
            "mcq_v073" if extract_new else "mlvu_paren", "mlvu_dev_all7", "percent", 16, "test (sy1998/MLVU_dev)",
            "MLVU dev, the 7 multiple-choice task types (2,174 questions)", src.format("mlvu"),
            headline="per task type 100 x correct / answered, summed over all 7 types and divided by 7 (an "
                     "absent type counts 0)"),
        "lvbench": TaskRule(
            "lvbench", "lvbench", "lvbench" if extract_new else "lvbench_v071",
            {"default": {"pre_prompt": "", "post_prompt": lvbench_post}}, extract,
            "fraction", "fraction", 16, "train (lmms-lab/LVBench)", "LVBench, 1,549 questions", src.format("lvbench"),
            headline="mean of the 0/1 scores (a fraction)"),
    }
    return Protocol(
        name=name, paper=paper, harness="lmms-eval", release=version,
        summary=(f"lmms-eval {version}" + (" (PyPI); the newest release when read" if extract_new else
                 f" as bundled in xjtupanda/Tango@{TANGO_COMMIT[:7]} lmms-eval/ (pyproject version 0.7.1), used by "
                 f"Tango for its efficiency profiling on videomme with --model llava_onevision")),
        wrappers={"llava_onevision": _lmms_wrappers(version, "simple/")["llava_onevision"]},
        tasks=tasks, seed=0,
        seed_source="lmms_eval/evaluator.py simple_evaluate(random_seed=0): random.seed(0) before the run",
        differs_from_newest="(the newest)" if extract_new else (
            "VideoMME / LVBench answers: first capital A-D after prefixes (0.7.3: lmms_eval/tasks/_task_utils/"
            "mcq_extract.py, ranked formats, last occurrence); MLVU dev: the character before the first ')' "
            "(0.7.3: mcq_extract); LVBench: a separate options field is not printed (0.7.3 appends it as '(A) ...' lines)"),
        notes=() if extract_new else (
            "Tango's bundled copy differs from the PyPI 0.7.1 wheel, for these tasks, only in videomme.yaml "
            "(dataset_kwargs.token False), longvideobench/utils.py (imports VideoReader) and by carrying the "
            "_default_template_yaml files the wheel does not package; its models/simple/llava_onevision.py adds "
            "the WRAPPER patch hook, ST-RoPE timestamps and the efficiency profiler.",),
    )


def _tango_vlmevalkit() -> Protocol:
    src = f"xjtupanda/Tango@{TANGO_COMMIT[:7]} VLMEvalKit/vlmeval/dataset/{{}}"
    llava = Wrapper("llava", ("llava-onevision-7b", "llava-video-7b"), ("llava-video-7b",), "fps1_then_linspace_floor", 2048, False,
                    f"xjtupanda/Tango@{TANGO_COMMIT[:7]} VLMEvalKit/vlmeval/vlm/llava/llava.py LLaVA_OneVision."
                    f"generate_inner_video: '<image>\\n' + (LLaVA-Video: time instruction) + every text message "
                    f"concatenated; max_new_tokens 2048; frames: 1 fps, uniform to nframe beyond (nframe is in the "
                    f"run config JSONs, which are not in the repository)")
    judge = ("VLMEvalKit scores with an LLM judge (chatgpt-0125 through Azure, run_eval_*.sh --judge-args "
             "'{\"use_azure\": true}') where its rules do not match: not reproducible offline")
    tasks = {
        "videomme": TaskRule("videomme", "Video-MME", "vlmeval_videomme", {}, "vlmeval_prefix_regex",
                             "micro_percent", "percent", 2048, "test", "Video-MME, 2,700 questions, no subtitles",
                             src.format("videomme.py") + " + utils/videomme.py", offline=judge),
        "mvbench": TaskRule("mvbench", "MVBench", "vlmeval_mvbench", {}, "vlmeval_prefix_regex", "mvbench_tasks",
                            "percent", 2048, "per sub-task", "MVBench, 20 x 200", src.format("mvbench.py"),
                            clip="segment", offline=judge),
        "mlvu": TaskRule("mlvu", "MLVU_MCQ", "vlmeval_mlvu", {}, "vlmeval_prefix_regex", "mlvu_dev_all7", "percent",
                         2048, "dev", "MLVU dev multiple-choice", src.format("mlvu.py"), offline=judge),
        "longvideobench": TaskRule("longvideobench", "LongVideoBench", "vlmeval_longvideobench", {},
                                   "vlmeval_prefix_regex", "micro_percent", "percent", 2048, "val",
                                   "LongVideoBench val, no subtitles", src.format("longvideobench.py"), offline=judge),
    }
    return Protocol(
        name="tango-vlmevalkit", paper="tango", harness="VLMEvalKit", release=f"Tango@{TANGO_COMMIT[:7]}",
        summary="Tango's accuracy runs: its bundled VLMEvalKit (README 'We adopt the VLMEvalKit framework for "
                "performance evaluation'; run_eval_ov.sh / run_eval_video.sh / run_eval_qwen.sh), not lmms-eval",
        wrappers={"llava": llava}, tasks=tasks, seed=0, seed_source="no random fallback in the rules used here",
        differs_from_newest="a different harness: VLMEvalKit prompts (system text + 'Question: ...'), an LLM judge, "
                            "2,048 new tokens",
        stand_in="partly: prompts and the rule-based extraction are VLMEvalKit's; the LLM-judge fallback and the "
                 "run config JSONs (dataset list, frames) are not available; Qwen2.5-VL's wrapper "
                 "(vlmeval/vlm/qwen2_vl) is not modelled here; LLaVA-Video's time instruction is the adapter's "
                 "text (methods/adapters/text.py), not byte-identical to VLMEvalKit's ('seconds,and ... it.These', "
                 "after '<image>\\n')",
    )


def _stts() -> Protocol:
    base = _lmms_eval_07(NEWEST_LMMS_EVAL, "stts-molmo2", "stts", True)
    molmo = Wrapper("molmo2", ("molmo2-4b",), (), "linspace_round", 16, True,
                    "the project's Molmo2 adapter (methods/adapters/molmo2.py); Molmo2's own evaluation wrapper "
                    f"(allenai/molmo2@{MOLMO2_COMMIT[:7]} olmo/eval) formats prompts in its data pipeline, not read")
    return Protocol(
        name="stts-molmo2", paper="stts", harness="molmo2 (assumed)", release=f"molmo2@{MOLMO2_COMMIT[:7]} (assumed)",
        summary="STTS is built on Molmo2, whose evaluation is its own harness (olmo/eval: e.g. MVBench and MLVU MC "
                "scored by 'em_start', VideoMME by video_mme_eval), not lmms-eval; STTS's repository and paper "
                "text could not be read, so the prompts and parsing here are a stand-in",
        wrappers={"molmo2": molmo}, tasks=base.tasks, seed=0, seed_source=base.seed_source,
        differs_from_newest="stand-in: the newest lmms-eval's task rules with the Molmo2 adapter",
        stand_in="allenai/STTS could not be read; Molmo2's prompt formatting (its data pipeline) was not read: "
                 "prompts, extraction and aggregation are lmms-eval 0.7.3's",
    )


PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (
    _holitom(),
    _lmms_eval_07("0.7.1", "tango-lmms-eval-0.7.1", "tango", False),
    _tango_vlmevalkit(),
    _stts(),
    _lmms_eval_07(NEWEST_LMMS_EVAL, f"lmms-eval-{NEWEST_LMMS_EVAL}", "project", True),
)}
#: the protocol of format_prompt(sample) without one (the harness and the public API)
DEFAULT_PROTOCOL = f"lmms-eval-{NEWEST_LMMS_EVAL}"
#: wrapper of format_prompt(sample) without one
DEFAULT_WRAPPER = "llava_onevision"


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"unknown evaluation protocol {name!r}; allowed: {', '.join(PROTOCOLS)}") from None


def claim_benchmarks(setting: Mapping[str, Any], suites: Mapping[str, list[str]]) -> list[str]:
    """Loader names a claim setting's benchmarks stand for (a suite expands to its members)."""
    out = []
    for b in setting.get("benchmarks") or []:
        out += list(suites.get(b, [b]))
    return out


def check_claim_protocol(claim: Mapping[str, Any], suites: Mapping[str, list[str]]) -> None:
    """ValueError naming the claim, the protocol and what is allowed when the claim's protocol is
    unknown, misses one of its benchmarks, or has no wrapper fitting its model."""
    name = claim.get("protocol")
    if name is None:
        return
    where = f"claim {claim.get('id')!r}"
    try:
        protocol = get_protocol(name)
        setting = claim.get("setting", {})
        for bench in claim_benchmarks(setting, suites):
            if bench in BENCHMARKS:
                protocol.task(bench)
        protocol.wrapper_for(setting["model"], setting.get("wrapper"))
    except ValueError as exc:
        raise ValueError(f"{where}: field 'protocol': {exc}") from None


def describe(protocol: Protocol, benchmark: str, wrapper: Wrapper) -> dict[str, Any]:
    """What a cell summary / shard header records about the protocol of one benchmark."""
    rule = protocol.task(benchmark)
    return {"name": protocol.name, "release": f"{protocol.harness} {protocol.release}", "task": rule.task,
            "wrapper": wrapper.name, "max_new_tokens": protocol.max_new_tokens(benchmark, wrapper),
            "extract": rule.extract, "aggregate": rule.aggregate, "unit": rule.unit, "fallback": rule.fallback,
            "seed": protocol.seed, "split": rule.split, "question_set": rule.question_set, "clip": rule.clip,
            "subtitles": rule.subtitles, "frame_sampling": wrapper.frame_sampling,
            "time_instruction": wrapper.time_instruction, "offline": rule.offline, "stand_in": protocol.stand_in,
            "source": rule.source}
