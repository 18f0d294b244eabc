"""Class 5 of issue 27: configuration cannot silently change the run.

A key given twice (PyYAML keeps the last silently), an empty list that drops cells, a ``--profile``
that is a file (its content was ignored and the full run planned), a config file that is missing,
binary, tab-indented, empty or a list, and profiles overriding each other's ``keep-going``: each
is refused naming the file, or composes as written. Workflow cases run the real ``snakemake -n``
and hash a results tree before and after: a refused run changes nothing computed.
"""
from __future__ import annotations

import json

import pytest
import yaml

from replicate.configuration import ConfigError, check_command_line, read_config_file

from .helpers import REPO, snakemake, tree_hash

BAD_FILES = {  # name -> (bytes, what the message holds)
    "missing": (None, "does not exist"),
    "binary": (b"\x7fELF\x02\x01\x01\x00\xff\xfe\x00\x00", "not a UTF-8 text file"),
    "nul": (b"cpu:\x00\n", "NUL"),
    "tab": (b"cpu:\n\tn_samples: 4\n", "tabs"),
    "duplicate-top": (b"cpu:\n  n_samples: 4\ngpu: false\ncpu:\n  threads: 2\n", "found key 'cpu' twice (first on line 1, again on line 4)"),
    "duplicate-nested": (b"cpu:\n  n_samples: 4\n  n_samples: 5\n", "found key 'n_samples' twice"),
    "empty": (b"", "is empty"),
    "comments-only": (b"# nothing here\n", "is empty"),
    "list": (b"- cpu\n- gpu\n", "holds a list, not a mapping"),
    "scalar": (b"42\n", "holds a int, not a mapping"),
    "bad-yaml": (b"cpu: {n_samples: 4\n", "not valid YAML"),
}


def _write(tmp_path, name):
    content, _ = BAD_FILES[name]
    f = tmp_path / f"{name}.yaml"
    if content is not None:
        f.write_bytes(content)
    return f


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_config_file_is_named(tmp_path, name):
    f = _write(tmp_path, name)
    with pytest.raises(ConfigError) as exc:
        read_config_file(f)
    assert str(f) in str(exc.value) and BAD_FILES[name][1] in str(exc.value), str(exc.value)


def test_a_directory_is_not_a_config_file(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        read_config_file(tmp_path)


@pytest.mark.parametrize("argv", [["--configfile", "{f}"], ["--configfile={f}"], ["--configfiles", "{ok}", "{f}"],
                                  ["-n", "--configfile", "{ok}", "{f}", "--cores", "1"]])
def test_the_command_lines_config_files_are_checked(tmp_path, argv):
    ok = tmp_path / "ok.yaml"
    ok.write_text("cpu:\n  n_samples: 4\n")
    f = _write(tmp_path, "duplicate-top")
    with pytest.raises(ConfigError, match=rf"--configfile '{f}'.*twice"):
        check_command_line([a.format(f=f, ok=ok) for a in argv])
    check_command_line([a.format(f=ok, ok=ok) for a in argv])  # the good ones pass


@pytest.mark.parametrize("flag", ["--profile", "--workflow-profile"])
def test_a_profile_that_is_a_file_is_refused(flag):
    smoke_config = REPO / "profiles" / "smoke" / "smoke.yaml"
    with pytest.raises(ConfigError, match="is a file, not a profile folder.*--profile profiles/smoke"):
        check_command_line([flag, str(smoke_config)])
    check_command_line([flag, str(REPO / "profiles" / "smoke")])


def test_the_workflow_rereads_its_config_files_with_duplicates_refused(tmp_path):
    """Snakemake has loaded a --configfile (keeping the last key) before the Snakefile runs; the
    Snakefile's prepare_config reads it again and refuses it, naming the file."""
    from replicate.configuration import load_config, prepare_config

    f = _write(tmp_path, "duplicate-nested")
    with pytest.raises(ConfigError, match=rf"{f}.*n_samples' twice"):
        prepare_config(load_config(), argv=[], cli_configfiles=[str(f)])


def test_a_claims_file_with_a_duplicated_key_is_refused(tmp_path):
    from replicate.claims import ClaimsError, load_document

    f = tmp_path / "claims.yaml"
    f.write_text("claims: []\ntables: []\nclaims: []\n")
    with pytest.raises(ClaimsError, match=rf"claims file '{f}'.*'claims' twice"):
        load_document(f)


# ---------------------------------------------------------------------------------- values
def _check(override):
    from replicate.configuration import check_all, deep_merge, load_config

    check_all(deep_merge(load_config(), override))


EMPTY_LISTS = [
    ({"cpu": {"retentions": []}}, "cpu.retentions"),
    ({"cpu": {"video": {"retentions": []}}}, "cpu.video.retentions"),
    ({"efficiency": {"cpu": {"retentions": []}}}, "efficiency.cpu.retentions"),
    ({"holitom": {"k_sweep": []}}, "holitom.k_sweep"),
    ({"holitom": {"cpu": {"retentions": []}}}, "holitom.cpu.retentions"),
    ({"holitom": {"bench": {"retentions": []}}}, "holitom.bench.retentions"),
    ({"figures": {"flops_vs_retention": {"models": []}}}, "figures.flops_vs_retention.models"),
    ({"analytic": {"grid": [{"models": ["llava-onevision-7b"], "methods": ["vanilla"], "retentions": []}]}},
     "analytic.grid.0.retentions"),
]


@pytest.mark.parametrize("override,key", EMPTY_LISTS, ids=[k for _, k in EMPTY_LISTS])
def test_an_empty_list_that_would_drop_cells_is_refused(override, key):
    with pytest.raises(ConfigError, match=rf"config key {key}: \[\] should be non-empty"):
        _check(override)


DUPLICATES = [({"cpu": {"retentions": [0.1, 0.10]}}, "cpu.retentions", "0.1"),
              ({"cpu": {"methods": ["vanilla", "tango", "tango"]}}, "cpu.methods", "'tango'"),
              ({"seeds": [0, 0]}, "seeds", "0"),
              ({"holitom": {"k_sweep": [2, 18, 2]}}, "holitom.k_sweep", "2"),
              ({"efficiency": {"cpu": {"methods": ["tango", "tango"]}}}, "efficiency.cpu.methods", "'tango'")]


@pytest.mark.parametrize("override,key,item", DUPLICATES, ids=[k for _, k, _ in DUPLICATES])
def test_a_list_that_gives_an_item_twice_is_refused(override, key, item):
    with pytest.raises(ConfigError, match=rf"config key {key}: .* gives {item} more than once"):
        _check(override)


def test_the_video_layout_can_still_be_left_out_on_purpose():
    _check({"cpu": {"video": {"methods": []}}})  # schema: "methods: [] leaves it out"


def test_a_float_from_the_command_line_where_an_integer_is_meant():
    from replicate.configuration import check_all, coerce_cli_values, deep_merge, load_config

    cfg = coerce_cli_values(deep_merge(load_config(), {"stts": {"train": {"steps": "2.0"}}}))
    with pytest.raises(ConfigError, match="stts.train.steps: 2.0 is not of type 'integer'"):
        check_all(cfg)


# ---------------------------------------------------------------------------------- python -m replicate.configuration
def test_the_cli_layers_the_file_like_the_workflow(tmp_path, capsys):
    from replicate.configuration import main

    f = tmp_path / "site.yaml"
    f.write_text("cpu:\n  n_samples: 3\n")
    assert main([str(f)]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["cpu"]["n_samples"] == 3 and resolved["cpu"]["threads"] == 1  # the file over the defaults


@pytest.mark.parametrize("content,needle", [
    ("cpu:\n  retentions: [.nan]\n", "config key cpu.retentions[0]: nan is not a finite number"),
    ("cpu:\n  options:\n    holitom: {bogus: 1}\n", "unknown option(s) ['bogus'] for method 'holitom'"),
    ("holitom:\n  frames: [100000]\n", "config key holitom.frames: 100000 frames of llava-onevision-7b"),
    ("cpu:\n  retentions: []\n", "config key cpu.retentions: [] should be non-empty"),
    ("cpus:\n  n_samples: 4\n", "unknown config key(s) ['cpus']"),
])
def test_the_cli_refuses_what_the_workflow_refuses(tmp_path, capsys, content, needle):
    from replicate.configuration import main

    f = tmp_path / "bad.yaml"
    f.write_text(content)
    with pytest.raises(SystemExit) as exc:
        main([str(f)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and needle in err and len(err.strip().splitlines()) == 1, err


# ---------------------------------------------------------------------------------- profiles compose
@pytest.mark.parametrize("profiles,keep_going", [(["profiles/rehearsal"], True), (["profiles/smoke"], False),
                                                 ([], False), (["profiles/gpu"], False)])
def test_profiles_compose_without_the_workflow_profile_overriding_keep_going(monkeypatch, profiles, keep_going):
    from snakemake.cli import parse_args

    monkeypatch.chdir(REPO)  # profiles/default is found next to the Snakefile
    argv = ["-n", *[a for p in profiles for a in ("--profile", p)]]
    assert parse_args(argv)[1].keep_going is keep_going


def test_the_workflow_profile_sets_nothing_another_profile_sets_differently():
    default = yaml.safe_load((REPO / "profiles" / "default" / "config.yaml").read_text())
    for other in ("smoke", "gpu", "rehearsal"):
        prof = yaml.safe_load((REPO / "profiles" / other / "config.yaml").read_text())
        clash = {k: (v, prof[k]) for k, v in default.items() if k in prof and prof[k] != v}
        assert not clash, f"profiles/default would override profiles/{other}: {clash}"


# ---------------------------------------------------------------------------------- the real workflow
@pytest.fixture
def workdir(tmp_path):
    """A working directory holding a small results tree (hashed before and after each case)."""
    res = tmp_path / "work" / "results" / "cpu" / "accuracy" / "vanilla"
    res.mkdir(parents=True)
    (res / "full.json").write_text(json.dumps({"status": "ok", "accuracy": 1.0}))
    (tmp_path / "work" / "results" / "claims").mkdir()
    return tmp_path / "work"


@pytest.mark.workflow
@pytest.mark.parametrize("case", ["profile-file", "missing", "binary", "duplicate-top", "empty", "list"])
def test_snakemake_refuses_before_planning_and_keeps_the_results(tmp_path, workdir, case):
    before = tree_hash(workdir / "results")
    if case == "profile-file":
        args, needle = ["--profile", str(REPO / "profiles" / "smoke" / "smoke.yaml")], "is a file, not a profile folder"
    else:
        f = _write(tmp_path, case)
        args, needle = ["--configfile", str(f)], str(f)
    proc = snakemake("-n", "--cores", "1", "--directory", str(workdir), *args, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert ": error: " in last and needle in last and "ConfigError" in last, last  # argparse's line (prog: error:)
    assert "Traceback" not in proc.stderr
    assert tree_hash(workdir / "results") == before


@pytest.mark.workflow
def test_the_snakefile_itself_refuses_duplicates_without_the_workflow_profile(tmp_path, workdir):
    """With ``--workflow-profile none`` the profile's check is skipped; the Snakefile's remains."""
    before = tree_hash(workdir / "results")
    f = _write(tmp_path, "duplicate-nested")
    proc = snakemake("-n", "--cores", "1", "--workflow-profile", "none", "--directory", str(workdir),
                     "--configfile", str(f), timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and str(f) in out and "'n_samples' twice" in out, out[-2000:]
    assert tree_hash(workdir / "results") == before
