"""Paper-tier benchmark loaders: MCQ video QA sets read from local copies (never downloaded).

    from replicate.benchmarks import load_benchmark, format_prompt, evaluate_benchmark
    samples = load_benchmark("videomme", "/data/Video-MME", limit=50)
    result = evaluate_benchmark(lambda s: my_model(s.video_path, format_prompt(s)), samples)
"""
from .base import (
    BENCHMARKS,
    Benchmark,
    IncompleteBenchmarkWarning,
    MCQSample,
    MissingVideoError,
    MissingVideoWarning,
    SampleList,
    config_key,
    read_records,
)
from .fixtures import make_fixture
from .prompts import ANSWER_DIRECTLY, parse_letter
from .registry import LOADERS, format_prompt, get_benchmark, load_benchmark
from .run import evaluate_benchmark, result_path, retention_label, write_result
from .scoring import score

__all__ = [
    "ANSWER_DIRECTLY",
    "BENCHMARKS",
    "Benchmark",
    "IncompleteBenchmarkWarning",
    "LOADERS",
    "MCQSample",
    "MissingVideoError",
    "MissingVideoWarning",
    "SampleList",
    "config_key",
    "evaluate_benchmark",
    "format_prompt",
    "get_benchmark",
    "load_benchmark",
    "make_fixture",
    "parse_letter",
    "read_records",
    "result_path",
    "retention_label",
    "score",
    "write_result",
]
