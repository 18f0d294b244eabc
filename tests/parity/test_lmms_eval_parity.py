"""Parity of the evaluation protocols with the lmms-eval releases' own task code (marker ``parity``).

Each lmms-eval protocol of replicate/benchmarks/protocols.py is compared with the release it names,
downloaded from PyPI as a wheel (``pip download --no-deps lmms-eval==X``, cached in pytest's cache
directory or the session's temporary folder), on the sample documents of tests/parity/data/docs.json
and the >= 200 replies per benchmark of tests/parity/data/replies.json: prompt text byte for byte
(every wrapper of the protocol), the extracted answer, the per-question score and the aggregate
(see compare.py). Target: 0 disagreements. Without PyPI the tests skip, saying so.

    python -m pytest -m parity tests/parity
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from compare import BENCHES, ProjectRules, compare
from lmms_release import Release, Unavailable, fetch
from replicate.benchmarks.protocols import PROTOCOLS, WHEEL_SHA256

pytestmark = pytest.mark.parity

DATA = Path(__file__).resolve().parent / "data"
DOCS = json.loads((DATA / "docs.json").read_text())
REPLIES = json.loads((DATA / "replies.json").read_text())
#: protocol -> the lmms-eval release whose task code it follows (STTS's stand-in: the newest)
RELEASE_OF = {"holitom-lmms-eval-0.3.0": "0.3.0", "tango-lmms-eval-0.7.1": "0.7.1", "lmms-eval-0.7.3": "0.7.3",
              "stts-molmo2": "0.7.3"}
CASES = [(p, b) for p in RELEASE_OF for b in PROTOCOLS[p].tasks]


@pytest.fixture(scope="session")
def releases(request, tmp_path_factory):
    cache_plugin = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    cache = cache_plugin.mkdir("lmms_eval_wheels") if cache_plugin else tmp_path_factory.mktemp("lmms")
    out: dict[str, Release | str] = {}
    for version in sorted(set(RELEASE_OF.values())):
        try:
            root, digest = fetch(version, Path(cache))
            out[version] = Release(version, root, digest)
        except Unavailable as exc:
            out[version] = str(exc)
    return out


def _release(releases, version: str) -> Release:
    rel = releases[version]
    if isinstance(rel, str):
        pytest.skip(f"lmms-eval {version} not available from PyPI here: {rel}")
    return rel


def test_corpus_has_200_replies_per_benchmark():
    assert {k for k in DOCS if not k.startswith("_")} == set(BENCHES)
    assert all(len(REPLIES[b]) >= 200 for b in BENCHES), {b: len(REPLIES[b]) for b in BENCHES}


@pytest.mark.parametrize("version", sorted(set(RELEASE_OF.values())))
def test_downloaded_wheel_is_the_one_read(releases, version):
    assert _release(releases, version).sha256 == WHEEL_SHA256[version]


@pytest.mark.parametrize("protocol_name, bench_name", CASES, ids=[f"{p}-{b}" for p, b in CASES])
def test_parity_with_release(releases, tmp_path, protocol_name, bench_name):
    protocol = PROTOCOLS[protocol_name]
    release = _release(releases, RELEASE_OF[protocol_name])
    wrappers = [(w, w if w in ("llava_onevision", "llava_vid") else "default") for w in protocol.wrappers]
    rep = compare(protocol, bench_name, release, ProjectRules(), DOCS[bench_name], REPLIES[bench_name],
                  tmp_path / bench_name, wrappers)
    print(f"{protocol_name} {bench_name}: disagreements {rep.counts} of {rep.compared}")
    assert rep.total == 0, "\n".join(rep.examples)
    assert rep.compared["extracted"] >= 200 and rep.compared["prompt"] >= len(DOCS[bench_name])


@pytest.mark.parametrize("protocol_name, bench_name", CASES, ids=[f"{p}-{b}" for p, b in CASES])
def test_generation_settings_match_the_release_yaml(releases, protocol_name, bench_name):
    """max new tokens, split and task name of the protocol against the release's task YAML (the
    wrapper's default where the YAML sets none); a YAML whose include the wheel does not package
    (0.7.1's _default_template_yaml) cannot say, and the test says so."""
    protocol = PROTOCOLS[protocol_name]
    release = _release(releases, RELEASE_OF[protocol_name])
    rule = protocol.task(bench_name)
    bench = BENCHES[bench_name]
    yaml_name = bench.yaml.format(subtask="action_sequence")
    release.utils(bench.task)  # writes the stand-in template where the wheel lacks one
    cfg, complete = release.task_config(bench.task, yaml_name)
    if not complete:
        pytest.skip(f"lmms-eval {release.version} wheel does not package the template {yaml_name} includes")
    for wrapper in protocol.wrappers.values():
        expected = (cfg.get("generation_kwargs") or {}).get("max_new_tokens", 1024)
        assert protocol.max_new_tokens(bench_name, wrapper) == expected
    assert rule.split.split()[0] == cfg["test_split"]
    if bench_name != "mvbench":
        assert rule.task == cfg["task"]


#: where each release keeps its wrappers (0.7.x moved them under models/simple/)
WRAPPER_DIR = {"0.3.0": "models", "0.7.1": "models/simple", "0.7.3": "models/simple"}
WRAPPER_CASES = [(p, w) for p in RELEASE_OF for w in PROTOCOLS[p].wrappers if w in ("llava_onevision", "llava_vid")]


@pytest.mark.parametrize("protocol_name, wrapper_name", WRAPPER_CASES, ids=[f"{p}-{w}" for p, w in WRAPPER_CASES])
def test_wrapper_facts_match_the_release_model_file(releases, protocol_name, wrapper_name):
    """The wrapper's part of the prompt lives outside the task utils, in the release's model file,
    which needs the LLaVA-NeXT package to import: its facts the protocol records are read from the
    file's text instead (default generation length, the frame rule, the stripped reply, the visual
    token line before the task prompt; llava_vid's one frame per second and no time instruction).
    The conversation template (qwen_1_5) is LLaVA-NeXT's, not in the wheel: see README."""
    release = _release(releases, RELEASE_OF[protocol_name])
    wrapper = PROTOCOLS[protocol_name].wrappers[wrapper_name]
    text = (release.pkg / WRAPPER_DIR[release.version] / f"{wrapper_name}.py").read_text()
    defaults = {int(n) for n in re.findall(r'gen_kwargs\["max_new_tokens"\] = (\d+)', text)}
    assert defaults == {wrapper.default_max_new_tokens}
    assert re.search(r"np\.linspace\(0, (total_frame_num|total_frames) - 1, \w+, dtype=int\)", text)
    assert wrapper.frame_sampling in ("linspace_floor", "fps1_then_linspace_floor")  # dtype=int truncates
    assert wrapper.strip_reply == bool(re.search(r"\.strip\(\)( for response in text_outputs\])?$", text, re.M))
    assert re.search(r'(image_tokens|DEFAULT_IMAGE_TOKEN) \+ "\\n" \+ (context|contexts|qs)\b', text)
    if wrapper_name == "llava_vid":
        assert "video_fps: int = 1," in text and "add_time_instruction: bool = False," in text
        assert wrapper.frame_sampling == "fps1_then_linspace_floor" and wrapper.time_instruction == ()
