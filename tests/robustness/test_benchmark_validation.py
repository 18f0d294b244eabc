"""Class 2 of issue 27: a damaged benchmark never gives a result.

Each case starts from a benchmark folder written the project's own way
(``replicate.benchmarks.make_fixture``, the rehearsal's layouts), breaks one record or file, and
loads it the way a cell does (``load_benchmark``; the paper tier's ``load_cell_samples``). The
error must name the file, the record index and id, the field and what is allowed
(``replicate.benchmarks.validation``).
"""
from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import pytest

from replicate.benchmarks import IncompleteBenchmarkWarning, load_benchmark, make_fixture
from replicate.benchmarks.validation import BenchmarkRecordError

NAMES = ("videomme", "mvbench", "egoschema", "longvideobench", "mlvu", "lvbench")


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("benchmarks")
    return {n: make_fixture(n, base / n, n=3) for n in NAMES}


@pytest.fixture
def copy(made, tmp_path):
    def _copy(name: str) -> Path:
        return Path(shutil.copytree(made[name], tmp_path / name, symlinks=True))
    return _copy


def _load(name: str, root: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteBenchmarkWarning)  # the 2-task fixtures
        return load_benchmark(name, root, strict=True)


def _edit_json(path: Path, edit) -> None:
    rows = json.loads(path.read_text())
    edit(rows)
    path.write_text(json.dumps(rows))


VIDEOMME = "videomme/test.json"


# ---------------------------------------------------------------------------------- the good ones load
@pytest.mark.parametrize("name", NAMES)
def test_every_fixture_benchmark_loads(made, name):
    samples = _load(name, made[name])
    assert samples and all(s.source for s in samples)  # each question knows its file and record


# ---------------------------------------------------------------------------------- records
RECORD_CASES = [  # (field, bad value, what the message must hold)
    ("options", "red", "field 'options' is 'red'; allowed: a list of option strings"),
    ("options", ["A. red", "B. green", "C. blue"], "3 options"),
    ("options", ["A. red", None, "C. blue", "D. x"], "field 'options'"),
    ("options", [], "0 options"),
    ("answer", "E", "answer 'E' outside the 4 options"),
    ("answer", "red", "field 'answer' is 'red'; allowed: an option letter"),
    ("answer", True, "field 'answer'"),
    ("question", "", "field 'question' is ''"),
    ("question", ["a"], "field 'question'"),
    ("videoID", "../../outside", "field 'videoID' is '../../outside'; allowed: a path relative to the dataset root"),
    ("videoID", "/etc/passwd", "field 'videoID'"),
    ("videoID", 7, "field 'videoID' is 7"),
]


@pytest.mark.parametrize("field,value,needle", RECORD_CASES, ids=[f"{f}={v!r}" for f, v, _ in RECORD_CASES])
def test_a_damaged_videomme_record_is_named(copy, field, value, needle):
    root = copy("videomme")
    _edit_json(root / VIDEOMME, lambda rows: rows[1].__setitem__(field, value))
    with pytest.raises(ValueError) as exc:
        _load("videomme", root)
    assert needle in str(exc.value) and "test.json record 1" in str(exc.value), str(exc.value)


def test_a_missing_field_names_record_id_and_allowed(copy):
    root = copy("videomme")
    _edit_json(root / VIDEOMME, lambda rows: rows[2].pop("answer"))
    with pytest.raises(BenchmarkRecordError, match=r"test\.json record 2 \(id '003-1'\): field 'answer' is missing; "
                                                   r"expected an option letter"):
        _load("videomme", root)


def test_a_record_that_is_not_a_mapping(copy):
    root = copy("videomme")
    _edit_json(root / VIDEOMME, lambda rows: rows.__setitem__(0, ["vid000", "q"]))
    with pytest.raises(BenchmarkRecordError, match=r"record 0: the record is a list, expected a mapping"):
        _load("videomme", root)


def test_duplicate_ids_name_both_records(copy):
    root = copy("videomme")
    _edit_json(root / VIDEOMME, lambda rows: rows[2].__setitem__("question_id", rows[0]["question_id"]))
    with pytest.raises(BenchmarkRecordError, match=r"'001-1' appears twice \(videomme test\.json record 0 and "
                                                   r"videomme test\.json record 2\)"):
        _load("videomme", root)


@pytest.mark.parametrize("name,rel,field,value,needle", [
    ("mvbench", "json/action_sequence.json", "candidates", "red", "field 'candidates' is 'red'"),
    ("mvbench", "json/action_sequence.json", "answer", "purple", "answer 'purple' is not one of the candidates"),
    ("mvbench", "json/action_sequence.json", "video", "../x.mp4", "field 'video' is '../x.mp4'"),
    ("longvideobench", "lvb_val.json", "video_path", "/abs/lvb000.mp4", "field 'video_path' is '/abs/lvb000.mp4'"),
    ("longvideobench", "lvb_val.json", "correct_choice", "first", "field 'correct_choice' is 'first'"),
    ("longvideobench", "lvb_val.json", "candidates", ["a", "b", "c", "d", "e", "f"], "6 options"),
    ("egoschema", "questions.json", "q_uid", "../../etc/x", "field 'q_uid'"),
    ("egoschema", "questions.json", "option 4", None, "4 options"),
    ("mlvu", "json/1_plotQA.json", "candidates", {"a": 1}, "field 'candidates'"),
])
def test_damaged_records_of_the_other_loaders(copy, name, rel, field, value, needle):
    root = copy(name)

    def edit(rows):
        if value is None:
            rows[0].pop(field)
        else:
            rows[0][field] = value

    _edit_json(root / rel, edit)
    with pytest.raises(ValueError) as exc:
        _load(name, root)
    assert needle in str(exc.value) and "record 0" in str(exc.value), str(exc.value)


def test_lvbench_qa_must_be_a_list_of_records(copy):
    root = copy("lvbench")
    f = root / "video_info.meta.jsonl"
    lines = [json.loads(x) for x in f.read_text().splitlines()]
    lines[0]["qa"] = "one question"
    f.write_text("".join(json.dumps(x) + "\n" for x in lines))
    with pytest.raises(BenchmarkRecordError, match=r"line 1 \(id 'yt000xyz'\): field 'qa' is 'one question'; "
                                                   r"allowed: a list of question records"):
        _load("lvbench", root)


# ---------------------------------------------------------------------------------- files
@pytest.mark.parametrize("content,needle", [("[]", "no usable question"), ("", "is empty"),
                                            ("   \n", "is empty"), ("[{]", "is not JSON"),
                                            ('"text"', "holds a JSON str"), (b"\xff\xfe\x00", "not UTF-8")])
def test_a_damaged_annotation_file_is_named(copy, content, needle):
    root = copy("videomme")
    f = root / VIDEOMME
    f.write_bytes(content) if isinstance(content, bytes) else f.write_text(content)
    with pytest.raises(BenchmarkRecordError, match=needle) as exc:
        _load("videomme", root)
    assert "test.json" in str(exc.value) or "videomme" in str(exc.value)


def test_a_jsonl_line_that_is_not_json_names_the_line(copy):
    root = copy("lvbench")
    f = root / "video_info.meta.jsonl"
    f.write_text(f.read_text() + "{broken\n")
    with pytest.raises(BenchmarkRecordError, match=r"video_info\.meta\.jsonl' line 3 is not JSON"):
        _load("lvbench", root)


def test_a_benchmark_whose_every_question_is_dropped_is_refused(copy):
    root = copy("egoschema")
    (root / "subset_answers.json").write_text("{}")
    with pytest.raises(BenchmarkRecordError, match=r"no usable question.*no public answer.*n = 0"):
        _load("egoschema", root)


def test_a_subset_with_no_question_is_refused(copy):
    root = copy("longvideobench")  # 3 questions: duration groups 15, 60 and 600 s
    with pytest.raises(BenchmarkRecordError, match="no usable question"):
        load_benchmark("longvideobench", root, subset="3600")


# ---------------------------------------------------------------------------------- video paths
def test_a_symlink_leaving_the_root_is_refused(copy, tmp_path):
    root = copy("videomme")
    outside = tmp_path / "elsewhere.mp4"
    shutil.copy(root / "data" / "vid001.mp4", outside)
    (root / "data" / "vid001.mp4").unlink()
    os.symlink(outside, root / "data" / "vid001.mp4")
    with pytest.raises(BenchmarkRecordError, match=r"record 1 \(id '002-1'\): video path .* outside the dataset root"):
        _load("videomme", root)


def test_a_symlinked_folder_leaving_the_root_is_refused(copy, tmp_path):
    root = copy("longvideobench")
    shutil.move(str(root / "videos"), tmp_path / "videos-elsewhere")
    os.symlink(tmp_path / "videos-elsewhere", root / "videos")
    with pytest.raises(BenchmarkRecordError, match="outside the dataset root"):
        _load("longvideobench", root)


def test_a_symlink_inside_the_root_is_fine(copy):
    root = copy("videomme")
    (root / "data" / "vid001.mp4").rename(root / "data" / "real001.mp4")
    os.symlink("real001.mp4", root / "data" / "vid001.mp4")
    assert len(_load("videomme", root)) == 3


def test_a_directory_named_like_a_video_is_named(copy):
    root = copy("videomme")
    (root / "data" / "vid002.mp4").unlink()
    (root / "data" / "vid002.mp4").mkdir()
    with pytest.raises(BenchmarkRecordError, match=r"record 2 \(id '003-1'\): video path .*vid002\.mp4' is a "
                                                   r"directory; expected a video file"):
        _load("videomme", root)


def test_the_paper_tier_ends_the_cell_naming_the_config_key(copy):
    from replicate.paper.cells import Cell
    from replicate.paper.checkpoints import PaperInputError
    from replicate.paper.shard import load_cell_samples

    root = copy("videomme")
    _edit_json(root / VIDEOMME, lambda rows: rows[0].__setitem__("videoID", "../../x"))
    cell = Cell(checkpoint="llava-onevision-7b", model="llava-onevision-7b", frames=8, method="vanilla",
                retention=None, options=(), benchmark="videomme", dataset="videomme")
    with pytest.raises(PaperInputError, match=r"paths\.datasets\.videomme: .*record 0.*'videoID'"):
        load_cell_samples(cell, {"paths": {"datasets": {"videomme": str(root)}}, "paper": {}})
