"""The lmms-eval model videoprune without lmms-eval (VideoPruneCore): generation kwargs as lmms-eval
tasks give them, request order and batching, stop strings, errors. The run inside lmms-eval itself
is tests/api/test_lmms_eval_model.py (marker lmms)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

import methods
from methods import lmms_eval_model as lm


def test_generation_kwargs_follow_lmms_eval_conventions():
    assert lm.generation_kwargs({"max_new_tokens": 16, "temperature": 0, "top_p": 1.0, "num_beams": 1,
                                 "do_sample": False, "until": ["\n\n"]}, 1024) == ({"max_new_tokens": 16}, ["\n\n"])
    assert lm.generation_kwargs({}, 64) == ({"max_new_tokens": 64}, [])
    assert lm.generation_kwargs({"temperature": 0.7, "top_p": 0.9, "until": "Q:"}, 8) == (
        {"max_new_tokens": 8, "do_sample": True, "temperature": 0.7, "top_p": 0.9}, ["Q:"])
    assert lm.generation_kwargs({"num_beams": 3}, 8)[0]["num_beams"] == 3     # refused later, by name
    assert lm.cut_at("B. red\n\nmore", ["\n\n"]) == "B. red" and lm.cut_at("abc", []) == "abc"


def test_groups_keep_order_and_batch_equal_kwargs():
    a, b = {"max_new_tokens": 4}, {"max_new_tokens": 8}
    args = [("q", a), ("q", a), ("q", b), ("q", a), ("q", a), ("q", a)]
    assert lm._groups(args, 2) == [[0, 1], [2], [3, 4], [5]]


class _Req:
    def __init__(self, *args):
        self.args = args


@pytest.fixture(scope="module")
def core(checkpoints):
    model = lm.VideoPruneCore(pretrained=str(checkpoints["llava-onevision"]), method="holitom", retention=0.5,
                              inner_k=2, frames=8, batch_size=3)
    return model


def test_generate_until_equals_methods_load(core, checkpoints, clips):
    docs = [{"video": str(c), "question": f"Which colour? ({i})"} for i, c in enumerate(clips)]
    core.task_dict = {"fixture": {"test": docs}}
    to_visual = lambda doc: [doc["video"]]
    gen = {"max_new_tokens": 6, "temperature": 0, "until": ["\n\n"]}
    reqs = [_Req(d["question"], gen, to_visual, i, "fixture", "test") for i, d in enumerate(docs)]
    got = core.generate_until(reqs)                     # batches of 3: [0, 1, 2], [3]
    ref = methods.load(checkpoints["llava-onevision"], "holitom", retention=0.5, inner_k=2, frames=8)
    want = [a.text.split("\n\n")[0] for a in ref.generate(clips, [d["question"] for d in docs], max_new_tokens=6)]
    assert got == want and core.batch_size == 3


def test_requests_it_cannot_answer(core, clips):
    core.task_dict = {"t": {"test": [{"v": str(clips[0])}]}}
    image_task = _Req("Q", {}, lambda doc: [SimpleNamespace()], 0, "t", "test")
    with pytest.raises(ValueError, match=r"one video file per document; task 't' gave SimpleNamespace"):
        core.generate_until([image_task])
    two = _Req("Q", {}, lambda doc: [doc["v"], doc["v"]], 0, "t", "test")
    with pytest.raises(ValueError, match=r"gave str, str"):
        core.generate_until([two])
    with pytest.raises(ValueError, match=r"num_beams=2 is not supported"):
        core.generate_until([_Req("Q", {"num_beams": 2}, lambda doc: [doc["v"]], 0, "t", "test")])
    with pytest.raises(NotImplementedError, match=r"generate_until only .*loglikelihood"):
        core.loglikelihood([])
    with pytest.raises(NotImplementedError, match=r"multi-round"):
        core.generate_until_multi_round([])


def test_model_args_errors(checkpoints, tmp_path):
    with pytest.raises(ValueError, match=r"pretrained=.* is not a local checkpoint directory"):
        lm.VideoPruneCore(pretrained=str(tmp_path / "none"))
    with pytest.raises(ValueError, match=r"batch_size must be an int >= 1 \(auto is not supported\)"):
        lm.VideoPruneCore(pretrained=str(checkpoints["llava-onevision"]), batch_size="auto")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['inner_kk'\] for method 'holitom'"):
        lm.VideoPruneCore(pretrained=str(checkpoints["llava-onevision"]), method="holitom", retention=0.1, inner_kk=2)
    # list-valued options arrive as strings from --model_args and are parsed like the CLI's --option
    # (layer options in the papers' 28-layer notation, scaled to the model's depth like every tier's)
    from methods.setting import scale_layer

    m = lm.VideoPruneCore(pretrained=str(checkpoints["llava-onevision"]), method="pdrop", layers="[7,14,21]", lam=0.5)
    depth = m.model.adapter.num_layers
    assert list(m.model.method.config.layers) == sorted({scale_layer(b, depth) for b in (7, 14, 21)})


def test_module_imports_without_lmms_eval():
    """The class on lmms-eval's base is built only when asked for (lmms-eval is not in this venv)."""
    import importlib.util

    assert lm.MODEL_ID == "videoprune"
    if importlib.util.find_spec("lmms_eval") is None:
        with pytest.raises(ModuleNotFoundError, match="lmms_eval"):
            lm.VideoPrune  # noqa: B018
