"""Efficiency harness on a tiny random model: fields, a pruned schedule, predictions, the CLI."""
import json
import subprocess
import sys

import pytest

from replicate.harness.efficiency import add_predictions, make_pixels, time_cell


@pytest.fixture(scope="module")
def tiny():
    from methods.adapters import LlavaOnevisionAdapter

    ad = LlavaOnevisionAdapter.tiny(layers=4, image_size=56)
    px, ts = make_pixels(ad, 8)
    return ad, px, ts


def test_time_cell_fields_and_pruned_schedule(tiny):
    ad, px, ts = tiny
    van = time_cell(ad, "vanilla", None, px, ts, repeats=1, warmup=0, decode_tokens=2)
    hol = time_cell(ad, "holitom", 0.10, px, ts, repeats=1, warmup=0, decode_tokens=2)
    for c in (van, hol):
        m = c["measured"]
        assert all(m[k] > 0 for k in ("vision_s", "other_s", "llm_s", "decode_tokens_per_s"))
        assert m["ttft_s"] == pytest.approx(m["vision_s"] + m["other_s"] + m["llm_s"])
        assert c["schedule"]["decode_steps"] == 2 and c["memory"]["process_peak_rss_mb"] > 0
    assert sum(hol["schedule"]["llm_visual"]) < sum(van["schedule"]["llm_visual"])
    assert hol["visual_tokens_llm"] < van["visual_tokens_llm"] == 8 * ad.tokens_per_frame
    assert hol["options"]["scaled"]["inner_k"] == [18, 3]  # 18*4/28 = 2.57 -> 3
    cells = [{**van, "status": "ok"}, {**hol, "status": "ok"}]
    fit = add_predictions(cells, ad.arch_spec(), hardware="cpu-2core", dtype="fp32")
    assert set(fit["efficiency"]) == {"vision_s", "llm_s", "decode_s_per_token"}
    # fitted on vanilla: its own prediction reproduces its measured vision and LLM times
    assert cells[0]["measured_over_predicted"]["llm"] == pytest.approx(1.0)
    assert cells[0]["measured_over_predicted"]["vision"] == pytest.approx(1.0)
    assert cells[1]["predicted"]["llm_s"] < cells[0]["predicted"]["llm_s"]
    assert cells[1]["speedup_vs_vanilla"]["llm_predicted"] > 1
    assert 0 < cells[1]["predicted"]["peak_memory_gb"] < cells[0]["predicted"]["peak_memory_gb"]


def test_cli_help_needs_no_snakemake():
    code = ("import sys; import replicate.harness.efficiency as e; e.build_parser(); "
            "assert 'snakemake' not in sys.modules and 'fvcore' not in sys.modules, 'heavy import'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    out = subprocess.run([sys.executable, "-m", "replicate.harness.efficiency", "--help"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "random weights" in " ".join(out.stdout.split()) and "--retention" in out.stdout


def test_cli_writes_one_json_per_cell_and_a_summary(tmp_path):
    out = subprocess.run([sys.executable, "-m", "replicate.harness.efficiency", "--arch", "cpu-bench",
                          "--frames", "2", "--methods", "vanilla,visionzip,dycoke",
                          "--retention", "0.10", "--repeats", "1", "--warmup", "0", "--decode-tokens", "1",
                          "--threads", "1", "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    rows = {(r["method"], r["rtag"]): r for r in summary["cells"]}
    assert set(rows) == {("vanilla", "full"), ("visionzip", "r0.10"), ("dycoke", "r0.10")}
    assert rows["dycoke", "r0.10"]["status"] == "not-applicable"  # 2 frames: dycoke needs >= 50 %
    assert rows["vanilla", "full"]["ratio_llm"] == pytest.approx(1.0)
    cell = json.loads((tmp_path / "visionzip" / "r0.10.json").read_text())
    assert cell["predicted"]["ttft_s"] > 0 and cell["provenance"]["attn_implementation"] == "sdpa"


def test_qwen2_5_vl_harness_cells_on_the_tiny_model():
    """The efficiency harness on a tiny random Qwen2.5-VL (the full-size --arch qwen2.5-vl-7b is the
    same code on costmodel's config): vanilla and Tango cells, recorded schedules, predictions."""
    from methods.adapters import Qwen2_5_VLAdapter
    from replicate.harness.bench_models import build_adapter, default_frames

    ad = Qwen2_5_VLAdapter.tiny(seed=0)
    px, ts = make_pixels(ad, 8)                     # 8 input frames -> 4 temporal groups of 16 tokens
    van = time_cell(ad, "vanilla", None, px, ts, repeats=1, warmup=0, decode_tokens=2)
    tan = time_cell(ad, "tango", 0.25, px, ts, repeats=1, warmup=0, decode_tokens=2)
    assert van["visual_tokens_llm"] == 4 * 16 and tan["visual_tokens_llm"] < 4 * 16
    assert van["schedule"]["frames"] == 4 and van["schedule"]["projector_tokens"] == 64
    windows = [v["sequences"] for v in van["schedule"]["vision"]]
    assert windows == [16, 4, 16, 4]                # window blocks: 4 windows x 4 groups; full: 4 groups
    cells = [{**van, "status": "ok"}, {**tan, "status": "ok"}]
    add_predictions(cells, ad.arch_spec(), hardware="cpu-2core", dtype="fp32")
    assert cells[0]["measured_over_predicted"]["llm"] == pytest.approx(1.0)
    assert cells[1]["predicted"]["llm_s"] < cells[0]["predicted"]["llm_s"]
    big = build_adapter("qwen2.5-vl-7b", device="meta", dtype="bf16")
    assert type(big).__name__ == "Qwen2_5_VLAdapter" and big.image_size == 448 and big.tokens_per_frame == 256
    assert default_frames("qwen2.5-vl-7b") == 64
