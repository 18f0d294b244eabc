"""`python -m costmodel` command line."""
import json
import subprocess
import sys

import pytest

from costmodel.__main__ import main, parse_option


def run(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_flops_paper_json(capsys):
    code, out = run(capsys, "flops", "--model", "llava-onevision-7b", "--frames", "32", "--method", "holitom",
                    "--retention", "0.10", "--option", "inner_k=18", "--convention", "paper", "--json",
                    "--budget", "global")
    data = json.loads(out)
    assert code == 0 and data["convention"] == "paper"
    assert data["total"] / 1e12 == pytest.approx(2.758, abs=1e-3)
    assert data["schedule"]["llm_visual"][18] == 314


def test_flops_exact_per_layer_table(capsys):
    code, out = run(capsys, "flops", "--model", "llava-video-7b", "--convention", "exact", "--per-layer",
                    "--text-tokens", "50", "--decode-steps", "2")
    assert code == 0
    assert "layer" in out and "prefill" in out and "decode" in out and "total" in out
    code, out = run(capsys, "flops", "--model", "llava-video-7b", "--convention", "exact", "--per-layer", "--json")
    assert set(json.loads(out)["per_layer"]["prefill"]) == {str(l) for l in range(-1, 28)}  # -1: final norm


def test_memory_and_latency(capsys):
    code, out = run(capsys, "memory", "--model", "llava-onevision-7b", "--text-tokens", "100", "--json")
    assert code == 0 and json.loads(out)["kv_prefill"] == 28 * 6373 * 2048
    code, out = run(capsys, "latency", "--model", "llava-onevision-7b", "--hardware", "h100-sxm",
                    "--method", "holitom", "--retention", "0.1", "--json")
    data = json.loads(out)
    assert code == 0 and data["hardware"] == "h100-sxm" and data["ttft_s"] > data["prefill_s"] > 0


def test_archs(capsys):
    code, out = run(capsys, "archs", "--json")
    assert code == 0 and [r["name"] for r in json.loads(out)][0] == "llava-onevision-7b"


@pytest.mark.parametrize("argv,needle", [
    (["flops", "--model", "gpt-5"], "invalid choice: 'gpt-5'"),
    (["flops", "--model", "llava-onevision-7b", "--method", "holitom", "--retention", "1.5"],
     "retention must be in (0, 1], got 1.5"),
    (["flops", "--model", "llava-onevision-7b", "--method", "holitom", "--retention", "0.1", "--option", "zz=1"],
     "unknown option(s) ['zz']"),
    (["flops", "--model", "llava-onevision-7b", "--option", "k"], "must look like name=value"),
    (["latency", "--model", "llava-onevision-7b", "--hardware", "tpu-v9"], "invalid choice: 'tpu-v9'"),
    (["flops", "--model", "llava-onevision-7b", "--frames", "0"], "frames must be an int >= 1, got 0"),
])
def test_bad_arguments_exit_2(capsys, argv, needle):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert needle in capsys.readouterr().err


def test_parse_option():
    assert parse_option("k=18") == ("k", 18)
    assert parse_option("r=0.5") == ("r", 0.5)
    assert parse_option("layers=2,7,14") == ("layers", (2, 7, 14))
    assert parse_option("budget=per_frame") == ("budget", "per_frame")


def test_subprocess_entry_point(repo_root):
    proc = subprocess.run([sys.executable, "-m", "costmodel", "flops", "--model", "llava-onevision-7b"],
                          capture_output=True, text=True, cwd=repo_root, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "40.7655" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "costmodel", "flops", "--model", "x"],
                         capture_output=True, text=True, cwd=repo_root, timeout=120)
    assert bad.returncode == 2 and "llava-onevision-7b" in bad.stderr


def test_flops_uses_the_claims_budget_rule_by_default_and_prints_percent_of_vanilla(capsys):
    """HoliTom's headline (README: 2.815 T = 6.906 % of 40.77 T on LLaVA-OV-7B, 32 frames, r = 0.10) is
    reproduced with the per-frame whole-token budget, the analytic tier's default; the command says
    which rule it used and the percentage of vanilla."""
    argv = ["flops", "--model", "llava-onevision-7b", "--frames", "32", "--method", "holitom", "--retention", "0.10"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "budget rule: per_frame" in out and "2.8153 T  (6.91 % of vanilla 40.7655 T)" in out
    assert main(argv + ["--budget", "global"]) == 0
    assert "budget rule: global" in capsys.readouterr().out
    assert main(argv + ["--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["budget"] == "per_frame" and round(data["percent_of_vanilla"], 3) == 6.906
    assert main(argv + ["--json", "--option", "budget=global"]) == 0  # the older spelling still works
    assert json.loads(capsys.readouterr().out)["budget"] == "global"
    assert main(["flops", "--model", "llava-onevision-7b", "--method", "fastv", "--retention", "0.5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["budget"] is None  # FastV keeps a fraction inside the LLM


def test_help_and_methods_listing_name_the_budget_option(capsys):
    with pytest.raises(SystemExit):
        main(["flops", "--help"])
    assert "--budget {per_frame,global}" in capsys.readouterr().out
    from methods.__main__ import main as methods_main

    assert methods_main([]) == 0
    listing = capsys.readouterr().out
    holitom = listing.split("\nholitom:")[1].split("\nholitom-wo-m:")[0]
    assert "--budget per_frame|global" in holitom
