"""Each loader on its fixture, the other on-disk layouts it accepts, and the error messages."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from replicate.benchmarks import (
    BENCHMARKS,
    IncompleteBenchmarkWarning,
    MCQSample,
    MissingVideoError,
    MissingVideoWarning,
    format_prompt,
    load_benchmark,
    read_records,
    score,
)
from replicate.benchmarks.fixtures import COLOURS

# What each fixture (n=3) must load as: (sample_id, n_options, answer_index) in load order.
EXPECTED = {
    "videomme": [("001-1", 4, 0), ("002-1", 4, 1), ("003-1", 4, 2)],
    # sub-task files are read in MVBench's task order; question i goes to task i % 2.
    "mvbench": [("action_sequence/0", 4, 0), ("action_sequence/1", 4, 2), ("object_existence/0", 3, 1)],
    "egoschema": [
        ("00000000-0000-4000-8000-000000000000", 5, 0),
        ("00000001-0000-4000-8000-000000000001", 5, 1),
        ("00000002-0000-4000-8000-000000000002", 5, 2),
    ],
    "longvideobench": [("lvb000_0", 4, 0), ("lvb001_0", 5, 1), ("lvb002_0", 4, 2)],
    "mlvu": [("plotQA/0", 4, 0), ("plotQA/1", 4, 2), ("count/0", 4, 1)],
    # two questions per video; the id is the question's uid
    "lvbench": [("100", 4, 0), ("101", 4, 1), ("102", 4, 2)],
}


def _clip_colour(path) -> str:
    import av

    with av.open(str(path)) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24")
    mean = frame.reshape(-1, 3).mean(0)
    return min(COLOURS, key=lambda k: float(np.abs(mean - np.array(COLOURS[k])).sum()))


def _window_colours(path, window) -> set[str]:
    """Colours of every frame methods.video_io samples from the clip window (8 frames)."""
    from methods.video_io import load_video

    clip = load_video(path, 8, 16, window=window)
    rgb = ((clip.pixel_values + 1) / 2 * 255).mean(dim=(2, 3)).numpy()
    return {min(COLOURS, key=lambda k: float(np.abs(m - np.array(COLOURS[k])).sum())) for m in rgb}


@pytest.mark.parametrize("name", BENCHMARKS)
def test_fixture_loads_with_right_ids_options_and_answers(name, fixture_root, load_quiet):
    root = fixture_root(name)
    samples = load_quiet(name, root)
    assert [(s.sample_id, len(s.options), s.answer_index) for s in samples] == EXPECTED[name]
    for s in samples:
        assert isinstance(s, MCQSample) and s.benchmark == name
        assert s.video_path.is_file() and s.video_path.is_relative_to(root)
        assert s.question.endswith("?")
        assert set(s.options) <= set(COLOURS)  # plain texts: any "A. " prefix is stripped
        # the fixture's right answer is the clip's colour: decoding the video must agree.
        if "clip" in s.meta:  # MVBench's full-length source: the clip is its window, not the video
            assert _window_colours(s.video_path, s.meta["clip"]) == {s.options[s.answer_index]}
            assert _clip_colour(s.video_path) != s.options[s.answer_index]
        else:
            assert _clip_colour(s.video_path) == s.options[s.answer_index]


def test_videomme_meta_and_duration_subset(fixture_root):
    root = fixture_root("videomme")
    samples = load_benchmark("videomme", root)
    assert [s.meta["duration"] for s in samples] == ["short", "medium", "long"]
    assert samples[0].meta["task_type"] == "Attribute Perception"
    assert samples[0].options == ["red", "green", "blue", "yellow"]  # "A. red" -> "red"
    assert [s.sample_id for s in load_benchmark("videomme", root, subset="long")] == ["003-1"]
    assert len(load_benchmark("videomme", root, subset=["short", "long"])) == 2


def test_videomme_reads_jsonl_and_alternate_video_extension(tmp_path, fixture_root):
    root = fixture_root("videomme")
    rows = json.loads((root / "videomme" / "test.json").read_text())
    (root / "videomme" / "test.json").unlink()
    (root / "videomme" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "data" / "vid001.mp4").rename(root / "data" / "vid001.mkv")  # lmms-eval also tries .mkv
    samples = load_benchmark("videomme", root)
    assert len(samples) == 3 and samples[1].video_path.name == "vid001.mkv"


def test_mvbench_subset_and_segment_bounds(fixture_root):
    root = fixture_root("mvbench")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # asking for present sub-tasks only: no incompleteness warning
        only = load_benchmark("mvbench", root, subset="object_existence")
    assert [s.sample_id for s in only] == ["object_existence/0"]
    with pytest.warns(IncompleteBenchmarkWarning, match="18 of 20 sub-tasks absent"):
        everything = load_benchmark("mvbench", root)
    # the fixture ships the official full-length source (3 x 8 frames at 8 fps), the clip its middle third
    assert everything[0].meta == {"subtask": "action_sequence", "start": 1.0, "end": 2.0, "clip": [1.0, 2.0],
                                  "video_source": "full-length"}
    unbounded = next(s for s in everything if s.meta["subtask"] == "object_existence")
    assert "clip" not in unbounded.meta and unbounded.meta["video_source"] == "as lmms-eval reads it"


def test_mvbench_prefers_lmms_evals_pre_cut_segment(fixture_root):
    """Where lmms-eval's pre-cut clip is on disk it is read as is (no window); the full-length
    source only with the window."""
    import shutil

    root = fixture_root("mvbench")
    src = root / "video" / "star" / "Charades_v1_480" / "act000.mp4"
    seg = root / "video" / "star" / "Charades_segment" / "act000.mp4"
    seg.parent.mkdir(parents=True)
    shutil.copy(src, seg)
    with pytest.warns(IncompleteBenchmarkWarning):
        s = load_benchmark("mvbench", root)[0]
    assert s.video_path == seg and "clip" not in s.meta and s.meta["video_source"] == "as lmms-eval reads it"


def test_mvbench_requested_subtask_absent_names_expected_file(fixture_root):
    root = fixture_root("mvbench")
    with pytest.raises(FileNotFoundError, match=r"json/fine_grained_pose\.json.*") as e:
        load_benchmark("mvbench", root, subset="fine_grained_pose")
    assert "paths.datasets.mvbench" in str(e.value)


def test_mvbench_answer_not_among_candidates_is_an_error(fixture_root, load_quiet):
    root = fixture_root("mvbench")
    p = root / "json" / "object_existence.json"
    rows = json.loads(p.read_text())
    rows[0]["answer"] = "purple"
    p.write_text(json.dumps(rows))
    with pytest.raises(ValueError, match="'purple' is not one of the candidates"):
        load_quiet("mvbench", root)


def test_egoschema_drops_questions_without_public_answer(fixture_root):
    root = fixture_root("egoschema")
    samples = load_benchmark("egoschema", root)
    assert samples.skipped == [("00000003-0000-4000-8000-000000000003", "no public answer")]
    assert score(samples, [0, 0, 0])["n_skipped"] == 1


def test_egoschema_lmms_lab_layout(tmp_path, fixture_root):
    # lmms-lab/egoschema rows: video_idx, option list with letter prefixes, answer index as text.
    root = tmp_path / "ego"
    (root / "Subset").mkdir(parents=True)
    rows = [
        {"question_idx": "0", "video_idx": "u0", "question": "Q0?", "option": ["A. a", "B. b", "C. c", "D. d", "E. e"], "answer": "3"},
        {"question_idx": "1", "video_idx": "u1", "question": "Q1?", "option": ["A. a", "B. b", "C. c", "D. d", "E. e"], "answer": ""},
    ]
    (root / "Subset" / "test.json").write_text(json.dumps(rows))
    (root / "videos").mkdir()
    (root / "videos" / "u0.mp4").write_bytes(b"x")
    samples = load_benchmark("egoschema", root)
    assert [(s.sample_id, s.options, s.answer_index) for s in samples] == [("u0", ["a", "b", "c", "d", "e"], 3)]
    assert samples.skipped == [("u1", "no public answer")]
    # lmms-eval: question, then "\n" + each lettered option, then the forced post prompt.
    assert format_prompt(samples[0]) == (
        "Q0?\nA. a\nB. b\nC. c\nD. d\nE. e\nAnswer with the option's letter from the given choices directly."
    )


def test_egoschema_questions_without_answer_file_is_an_error(fixture_root):
    root = fixture_root("egoschema")
    (root / "subset_answers.json").unlink()
    with pytest.raises(FileNotFoundError, match="subset_answers.json"):
        load_benchmark("egoschema", root)


def test_longvideobench_duration_groups_and_option_columns(tmp_path, fixture_root):
    root = fixture_root("longvideobench")
    samples = load_benchmark("longvideobench", root)
    assert [s.meta["duration_group"] for s in samples] == ["15", "60", "600"]
    assert [s.sample_id for s in load_benchmark("longvideobench", root, subset="60")] == ["lvb001_0"]
    # HF parquet export spelling: option0..option4 with "N/A" for absent options.
    alt = tmp_path / "lvb2"
    (alt / "videos").mkdir(parents=True)
    (alt / "videos" / "v.mp4").write_bytes(b"x")
    row = {"id": "v_0", "video_path": "v.mp4", "question": "Q?", "correct_choice": 2, "duration_group": 600,
           "question_category": "E2O", **{f"option{i}": o for i, o in enumerate(["a", "b", "c", "d", "N/A"])}}
    (alt / "lvb_val.json").write_text(json.dumps([row]))
    (s,) = load_benchmark("longvideobench", alt)
    assert s.options == ["a", "b", "c", "d"] and s.answer_index == 2 and s.meta["duration_group"] == "600"


def test_mlvu_subset_and_lmms_eval_layout(tmp_path, fixture_root):
    root = fixture_root("mlvu")
    assert [s.sample_id for s in load_benchmark("mlvu", root, subset="count")] == ["count/0"]
    # lmms-eval's MLVU copy: the options are written into the question; the answer is a letter.
    alt = tmp_path / "mlvu2"
    alt.mkdir()
    (alt / "v.mp4").write_bytes(b"x")
    q = "Question: What happens first?\nOptions:\n(A) a cat\n(B) a dog\n(C) a bird\n(D) a fish"
    (alt / "test.json").write_text(json.dumps([{"video_name": "v.mp4", "question": q, "answer": "B", "task_type": "order"}]))
    (s,) = load_benchmark("mlvu", alt)
    assert (s.question, s.options, s.answer_index, s.meta["task"]) == ("What happens first?", ["a cat", "a dog", "a bird", "a fish"], 1, "order")
    # the newest lmms-eval (mlvu_dev); HoliTom's 0.3.0 had only the old mlvu task (another dataset)
    assert format_prompt(s) == q + "\nOnly give the best option.\nBest option: ("


def test_lvbench_official_layout_groups_questions_by_video(fixture_root):
    root = fixture_root("lvbench")
    samples = load_benchmark("lvbench", root)
    assert [s.video_path.name for s in samples] == ["yt000xyz.mp4", "yt000xyz.mp4", "yt001xyz.mp4"]
    assert [s.meta["video_type"] for s in samples] == ["documentary", "documentary", "sports"]
    # multi-label capabilities: one category per label combination
    assert samples[1].meta["question_type"] == "entity recognition, reasoning"
    result = score(samples, ["(A)", "B", "D"])
    assert result["headline_accuracy"] == pytest.approx(200 / 3)
    assert result["per_category"]["video_type"] == {"documentary": {"accuracy": 100.0, "n": 2},
                                                    "sports": {"accuracy": 0.0, "n": 1}}


def test_lvbench_videos_under_all_videos_or_data_meta(tmp_path, fixture_root):
    root = fixture_root("lvbench")
    (root / "data").mkdir()
    (root / "video_info.meta.jsonl").rename(root / "data" / "video_info.meta.jsonl")
    (root / "videos").rename(root / "all_videos")
    samples = load_benchmark("lvbench", root, strict=True)
    assert [s.video_path.parent.name for s in samples] == ["all_videos"] * 3


def test_lvbench_lmms_eval_layout_with_and_without_options_field(tmp_path):
    root = tmp_path / "lvb"
    (root / "data").mkdir(parents=True)
    (root / "v1.mp4").write_bytes(b"x")
    rows = [{"uid": 7, "video_path": "v1.mp4", "question": "Who speaks first?\n(A) a\n(B) b\n(C) c\n(D) d",
             "answer": "C", "question_type": ["reasoning"]},
            {"video_path": "v1.mp4", "question": "Where is it?", "options": ["x", "y", "z", "w"], "answer": "D"}]
    (root / "data" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    first, second = load_benchmark("lvbench", root)
    assert (first.sample_id, first.question, first.options, first.answer_index) == ("7", "Who speaks first?", list("abcd"), 2)
    assert first.meta["question_type"] == "reasoning"
    assert (second.sample_id, second.options, second.answer_index) == ("v1.mp4-1", list("xyzw"), 3)
    # lmms-eval 0.7.3 appends the options field as "(A) ..." lines: same prompt as an embedded question;
    # 0.7.1 prints the question alone (and its post prompt has no period)
    assert format_prompt(second) == "Where is it?\n(A) x\n(B) y\n(C) z\n(D) w\nAnswer the question with the option letter"
    assert format_prompt(second, "tango-lmms-eval-0.7.1") == "Where is it?\nAnswer the question with the option letter"
    assert format_prompt(first, "tango-lmms-eval-0.7.1") == (
        "Who speaks first?\n(A) a\n(B) b\n(C) c\n(D) d\nAnswer the question with the option letter")


def test_lvbench_question_without_option_lines_names_the_record(tmp_path):
    root = tmp_path / "lvb"
    root.mkdir()
    line = {"key": "k", "qa": [{"uid": 1, "question": "No options here?", "answer": "A"}]}
    (root / "video_info.meta.jsonl").write_text(json.dumps(line) + "\n")
    with pytest.raises(ValueError, match=r"video_info\.meta\.jsonl line 1 qa 0: no '\(A\) \.\.\.' option lines"):
        load_benchmark("lvbench", root)
    line["qa"][0] = {"uid": 1, "question": "Q?\n(A) a\n(B) b"}
    (root / "video_info.meta.jsonl").write_text(json.dumps(line) + "\n")
    with pytest.raises(ValueError, match=r"line 1 qa 0 \(id 1\): field 'answer' is missing"):
        load_benchmark("lvbench", root)  # replicate.benchmarks.validation.BenchmarkRecordError


def test_parquet_annotations(tmp_path, fixture_root):
    pytest.importorskip("pyarrow")
    import pandas as pd

    root = fixture_root("videomme")
    rows = json.loads((root / "videomme" / "test.json").read_text())
    (root / "videomme" / "test.json").unlink()
    pd.DataFrame(rows).to_parquet(root / "videomme" / "test-00000-of-00001.parquet")
    samples = load_benchmark("videomme", root)
    assert [s.answer_index for s in samples] == [0, 1, 2] and samples[0].options[0] == "red"


def test_parquet_without_engine_says_how_to_convert(tmp_path):
    try:
        import pyarrow  # noqa: F401
        pytest.skip("pyarrow installed: parquet is readable")
    except ImportError:
        pass
    try:
        import fastparquet  # noqa: F401
        pytest.skip("fastparquet installed: parquet is readable")
    except ImportError:
        pass
    p = tmp_path / "test-00000-of-00001.parquet"
    p.write_bytes(b"PAR1")
    with pytest.raises(ImportError, match=r"pyarrow or fastparquet.*\.json/\.jsonl"):
        read_records(p)


# ---- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BENCHMARKS)
def test_missing_root_names_config_key_and_path(name, tmp_path):
    missing = tmp_path / "nowhere" / name
    with pytest.raises(FileNotFoundError) as e:
        load_benchmark(name, missing)
    assert f"paths.datasets.{name}" in str(e.value) and str(missing) in str(e.value)


@pytest.mark.parametrize("unset", ["", "  ", None])
def test_unset_root_names_config_key_not_cwd(unset):
    # replicate/config.yaml ships paths.datasets.* as "": that must not mean the working directory.
    with pytest.raises(FileNotFoundError, match=r"set config key `paths\.datasets\.mlvu`"):
        load_benchmark("mlvu", unset)


@pytest.mark.parametrize(
    "name, expected_name",
    [
        ("videomme", "videomme/test-*.parquet"),
        ("mvbench", "json/action_sequence.json"),
        ("egoschema", "questions.json"),
        ("longvideobench", "lvb_val.json"),
        ("mlvu", "test-*.parquet"),
        ("lvbench", "video_info.meta.jsonl"),
    ],
)
def test_missing_annotations_name_expected_files(name, expected_name, tmp_path):
    root = tmp_path / name
    root.mkdir()
    with pytest.raises(FileNotFoundError) as e:
        load_benchmark(name, root)
    msg = str(e.value)
    assert expected_name in msg and str(root) in msg and f"paths.datasets.{name}" in msg


def test_missing_video_skipped_with_one_warning_or_raised_when_strict(fixture_root):
    root = fixture_root("videomme")
    gone = root / "data" / "vid001.mp4"
    gone.unlink()
    with pytest.warns(MissingVideoWarning, match=r"1 of 3 samples have no video") as rec:
        samples = load_benchmark("videomme", root)
    assert len(rec) == 1 and "paths.datasets.videomme" in str(rec[0].message)
    assert [s.sample_id for s in samples] == ["001-1", "003-1"]
    assert samples.skipped == [("002-1", f"missing video: {gone}")]
    assert score(samples, [0, 2])["n_skipped"] == 1
    with pytest.raises(MissingVideoError) as e:
        load_benchmark("videomme", root, strict=True)
    assert str(gone) in str(e.value) and "paths.datasets.videomme" in str(e.value)


def test_limit_counts_loaded_samples_after_skipping(fixture_root):
    root = fixture_root("videomme")
    assert [s.sample_id for s in load_benchmark("videomme", root, limit=2)] == ["001-1", "002-1"]
    assert load_benchmark("videomme", root, limit=0) == []
    (root / "data" / "vid000.mp4").unlink()
    with pytest.warns(MissingVideoWarning):
        assert [s.sample_id for s in load_benchmark("videomme", root, limit=2)] == ["002-1", "003-1"]


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_bad_limit_rejected(bad, fixture_root):
    with pytest.raises(ValueError, match="limit"):
        load_benchmark("videomme", fixture_root("videomme"), limit=bad)


def test_bad_names_rejected_with_allowed_values(fixture_root):
    root = fixture_root("videomme")
    with pytest.raises(ValueError, match=r"unknown subset \['extra-long'\]; allowed: short, medium, long"):
        load_benchmark("videomme", root, subset="extra-long")
    with pytest.raises(ValueError, match="no subsets"):
        load_benchmark("egoschema", root, subset="subset")
    with pytest.raises(KeyError, match="unknown benchmark 'nextqa'"):
        load_benchmark("nextqa", root)


def test_record_missing_a_field_names_it(fixture_root):
    root = fixture_root("longvideobench")
    rows = json.loads((root / "lvb_val.json").read_text())
    del rows[1]["correct_choice"]
    (root / "lvb_val.json").write_text(json.dumps(rows))
    with pytest.raises(ValueError, match=r"lvb_val.json record 1 \(id 'lvb001_0'\): field 'correct_choice' is missing"):
        load_benchmark("longvideobench", root)


def test_sample_validates_answer_index(tmp_path):
    with pytest.raises(ValueError, match="answer_index 4 outside 0..3"):
        MCQSample("videomme", "x", tmp_path, "q", ["a", "b", "c", "d"], 4)


def test_json_copy_preferred_when_parquet_is_unreadable(fixture_root):
    from replicate.benchmarks.base import parquet_readable

    if parquet_readable():
        pytest.skip("a parquet engine is installed: the parquet file would be read")
    root = fixture_root("videomme")
    (root / "videomme" / "test-00000-of-00001.parquet").write_bytes(b"PAR1")  # the HF file, unreadable here
    assert [s.answer_index for s in load_benchmark("videomme", root)] == [0, 1, 2]  # from test.json
    (root / "videomme" / "test.json").unlink()
    with pytest.raises(ImportError, match="pyarrow or fastparquet"):
        load_benchmark("videomme", root)


def test_duplicate_sample_ids_are_an_error(fixture_root):
    root = fixture_root("videomme")
    rows = json.loads((root / "videomme" / "test.json").read_text())
    rows[2]["question_id"] = rows[0]["question_id"]
    (root / "videomme" / "test.json").write_text(json.dumps(rows))
    with pytest.raises(ValueError, match=r"sample id '001-1' appears twice \(videomme test.json record 0 and .* record 2\)"):
        load_benchmark("videomme", root)


def test_videomme_parquet_fixture_reads_like_the_json_one(tmp_path):
    """The HF layout (videomme/test-*.parquet, pyarrow is a dependency) gives the same samples."""
    from replicate.benchmarks import load_benchmark, make_fixture

    pq = load_benchmark("videomme", make_fixture("videomme", tmp_path / "pq", 4, parquet=True))
    js = load_benchmark("videomme", make_fixture("videomme", tmp_path / "js", 4))
    assert (tmp_path / "pq" / "videomme" / "test-00000-of-00001.parquet").is_file()
    assert [(s.sample_id, s.options, s.answer_index, s.meta) for s in pq] == \
           [(s.sample_id, s.options, s.answer_index, s.meta) for s in js]


# ---- the explicit lists -------------------------------------------------------------------------


def test_loaders_and_fixture_makers_cover_every_benchmark_once():
    from replicate.benchmarks import LOADERS
    from replicate.benchmarks.fixtures import MAKERS

    assert tuple(b.name for b in LOADERS) == BENCHMARKS
    assert tuple(MAKERS) == BENCHMARKS


def test_loader_list_rejects_a_duplicate_and_a_non_loader():
    from replicate.benchmarks.registry import LOADERS, build_registry

    with pytest.raises(ValueError, match="'videomme' is listed twice"):
        build_registry([*LOADERS, LOADERS[0]])
    with pytest.raises(TypeError, match="does not implement the Benchmark protocol"):
        build_registry([object()])


def test_unknown_fixture_name_lists_the_allowed(tmp_path):
    from replicate.benchmarks import make_fixture

    with pytest.raises(ValueError, match="unknown benchmark 'nope'; allowed: videomme, mvbench"):
        make_fixture("nope", tmp_path)
