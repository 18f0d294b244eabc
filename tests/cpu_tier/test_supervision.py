"""The auxiliary probes used while training the tiny model: labels from pixels, joint summary
classes, and a checkpoint that holds the plain HF model only."""
from dataclasses import replace

import pytest
import torch

from replicate.synthvqa import data as sv
from replicate.synthvqa.supervision import (COLOUR_CLASSES, MIN_PIXELS, AuxProbes, AuxWeights,
                                            summary_classes, summary_targets, token_colour_labels)


def _grey(frames=2, size=84):
    return torch.full((1, frames, size, size, 3), 128, dtype=torch.uint8)


def test_colour_labels_mark_the_token_regions_an_object_covers():
    v = _grey()
    v[0, 1, 30:40, 60:70] = torch.tensor(sv.COLOURS["blue"], dtype=torch.uint8)  # row 1, col 2 of 3x3
    v[0, 0, 0:10, 0:10] = torch.tensor(sv.LIGHT, dtype=torch.uint8)                # row 0, col 0
    labels = token_colour_labels(v, grid=3)
    expect = torch.zeros(1, 18, dtype=torch.long)
    expect[0, 0] = COLOUR_CLASSES.index("magenta")
    expect[0, 9 + 1 * 3 + 2] = COLOUR_CLASSES.index("blue")
    assert torch.equal(labels, expect)


def test_colour_labels_split_objects_by_pixel_count_and_ignore_grey_texture():
    v = _grey(frames=1)
    v[0, 0, :, :, :] = torch.arange(84, dtype=torch.uint8)[None, :, None] * 3  # bright achromatic ramp
    red = torch.tensor(sv.COLOURS["red"], dtype=torch.uint8)
    v[0, 0, 10:20, 26:30] = red   # 10 x 2 px left of the 28-px boundary, 10 x 2 right of it
    v[0, 0, 40:41, 26:31] = red   # 2 px left, 3 px right: below MIN_PIXELS on both sides
    labels = token_colour_labels(v, grid=3)[0]
    assert MIN_PIXELS > 3
    assert labels.tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 0]


def test_colour_labels_follow_every_family_in_generated_videos():
    cfg = replace(sv.SynthConfig(frames=8, size=84, small_object_px=10, event_object_px=12,
                                 light_px=12, ball_px=10))
    s = sv.make_sample("colour", (9, 0, 1), cfg)
    labels = token_colour_labels(s.video[None], grid=3)[0].reshape(8, 9)
    on = set(s.meta["frames_on"])
    assert all((labels[f] > 0).any() == (f in on) for f in range(8))
    assert {int(c) for c in labels[labels > 0]} == {COLOUR_CLASSES.index(s.meta["colour"])}
    d = sv.make_sample("direction", (9, 0, 2), cfg)
    per_frame = token_colour_labels(d.video[None], grid=3)[0].reshape(8, 9)
    assert bool((per_frame > 0).any(1).all())  # the ball is in every frame


def test_colour_label_order_is_the_pooled_token_order_of_hf():
    """Labels are row-major per frame; so is HF's bilinear pooling of the patch grid."""
    from replicate.synthvqa.model import build_model
    from replicate.synthvqa.tokenizer import build_tokenizer
    from replicate.synthvqa.train import TrainConfig

    cfg = TrainConfig()
    model = build_model(build_tokenizer(cfg.data), cfg.arch)
    side = cfg.arch.image_size // cfg.arch.patch_size  # 6 patches
    rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    patch_xy = torch.stack([rows, cols], -1).float().reshape(1, side * side, 2)  # conv flatten order
    pooled = model.model.apply_pooling(patch_xy)[0]
    g = (side + 1) // 2
    centre = torch.tensor([[2 * (k // g) + 0.5, 2 * (k % g) + 0.5] for k in range(g * g)])
    assert torch.allclose(pooled, centre)


def test_colour_labels_reject_bad_videos():
    with pytest.raises(ValueError, match="uint8"):
        token_colour_labels(torch.zeros(1, 2, 84, 84, 3), grid=3)
    with pytest.raises(ValueError, match="divisible by grid=5"):
        token_colour_labels(_grey(), grid=5)


def test_summary_targets_are_family_blocks():
    fams = ("colour", "order", "count", "direction")
    samples = [sv.make_sample(f, (9, 0, i), sv.SynthConfig(frames=8)) for i, f in enumerate(fams)]
    t = summary_targets(samples, fams)
    assert t.tolist() == [4 * i + s.answer_index for i, s in enumerate(samples)]
    assert summary_classes(fams) == 16
    with pytest.raises(ValueError, match=r"families \['colour'\] not in"):
        summary_targets(samples[:1], ("order",))


def test_probe_losses_are_weighted_and_zero_weights_are_skipped():
    torch.manual_seed(0)
    cfg = sv.SynthConfig(frames=8, size=84, small_object_px=10, event_object_px=12, light_px=12, ball_px=10)
    samples = [sv.make_sample("count", (9, 0, i), cfg) for i in range(2)]
    probes = AuxProbes(hidden=16, grid=3, families=cfg.families)
    feats, summary = torch.randn(2, 8 * 9, 16), torch.randn(2, 16)  # video tokens, no newline
    with torch.no_grad():
        full = probes.losses(AuxWeights(1.0, 1.0, 1.0), feats, summary, samples)
        half = probes.losses(AuxWeights(0.5, 0.0, 2.0), feats, summary, samples)
    assert set(full) == {"colour", "position", "summary"} and set(half) == {"colour", "summary"}
    assert float(half["colour"]) == pytest.approx(0.5 * float(full["colour"]))
    assert float(half["summary"]) == pytest.approx(2.0 * float(full["summary"]))
    assert not AuxWeights(0, 0, 0).active()
    with pytest.raises(ValueError, match="72 colour labels for 40 video tokens"):
        probes.losses(AuxWeights(), feats[:, :40], summary, samples)


def test_summary_layer_must_name_a_decoder_layer():
    from replicate.synthvqa.train import TrainConfig

    assert TrainConfig().summary_at == TrainConfig().arch.text_layers - 1
    with pytest.raises(ValueError, match=r"summary_layer must be in \[1, 3\]"):
        TrainConfig(summary_layer=0)


def test_probes_speed_up_learning_on_a_short_run_and_stay_out_of_the_checkpoint(tmp_path):
    """Same seed and steps: the probes give a lower answer loss, and the saved directory is a
    plain HF model (no probe weights)."""
    from safetensors.torch import load_file

    from replicate.synthvqa.train import smoke_config, train

    cfg = replace(smoke_config(), steps=24, log_every=24)
    _, _, with_probes = train(cfg, tmp_path / "m", log=lambda *_: None)
    _, _, without = train(replace(cfg, aux=AuxWeights(0.0, 0.0, 0.0)), None, log=lambda *_: None)
    assert set(with_probes["final_aux_losses"]) == {"colour", "position", "summary"}
    assert without["final_aux_losses"] == {}
    keys = load_file(str(tmp_path / "m" / "model.safetensors")).keys()
    assert not [k for k in keys if "probe" in k or k.startswith(("colour", "position", "summary"))]
    assert sum(with_probes["losses"][-8:]) < sum(without["losses"][-8:])


# ------------------------------------------------------------------ background-token thinning
def _labels():
    lab = torch.zeros(64, 72, dtype=torch.long)
    lab[:, 5] = 2  # one event token per row
    return lab


def test_thinning_keeps_event_tokens_and_is_seeded_by_step():
    from replicate.synthvqa.train import TrainConfig, thinning_mask

    cfg = TrainConfig(thin_prob=0.5, thin_keep_min=0.1)
    keep = thinning_mask(_labels(), step=3, cfg=cfg)
    assert bool(keep[:, 5].all())                                   # events are never dropped
    thinned = ~keep.all(1)
    assert 16 < int(thinned.sum()) < 48                              # about half the rows
    share = keep[thinned].float().mean(1)
    assert float(share.min()) >= 0.02 and float(share.max()) <= 1.0
    assert torch.equal(keep, thinning_mask(_labels(), 3, cfg))
    assert not torch.equal(keep, thinning_mask(_labels(), 4, cfg))
    assert bool(thinning_mask(_labels(), 3, TrainConfig(thin_prob=0.0)).all())
    assert bool(thinning_mask(_labels(), 3, TrainConfig(thin_prob=1.0, thin_keep_min=1.0)).all())
    with pytest.raises(ValueError, match=r"thin_keep_min in \(0, 1\], got 0.5 and 0.0"):
        TrainConfig(thin_prob=0.5, thin_keep_min=0.0)


def test_masking_dropped_tokens_equals_removing_them_with_original_positions():
    from replicate.synthvqa.evaluate import collate
    from replicate.synthvqa.model import build_inputs_embeds, build_model, lm_hidden, video_features
    from replicate.synthvqa.tokenizer import build_tokenizer
    from replicate.synthvqa.train import TrainConfig, masked_video_tokens

    cfg = TrainConfig()
    tok = build_tokenizer(cfg.data)
    model = build_model(tok, cfg.arch)
    samples = [sv.make_sample(f, (9, 0, i), cfg.data) for i, f in enumerate(("count", "direction"))]
    b = collate(samples, tok, model.config)
    is_video = b.input_ids == model.config.video_token_id
    keep = torch.rand(2, 73, generator=torch.Generator().manual_seed(0)) < 0.4
    keep[:, -1] = True
    with torch.no_grad():
        embeds = build_inputs_embeds(model, b.input_ids, video_features(model, b.pixel_values_videos))
        masked = lm_hidden(model, embeds, masked_video_tokens(b.attention_mask, is_video, keep))
        for i in range(2):
            n = int(b.attention_mask[i].sum())
            kept = torch.ones(n, dtype=torch.bool)
            kept[is_video[i, :n].nonzero().flatten()] = keep[i]
            pos = torch.arange(n)[kept][None]
            removed = lm_hidden(model, embeds[i:i + 1, :n][:, kept], None, pos)
            torch.testing.assert_close(removed[0, -1], masked[i, n - 1], rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="keep has 72 columns; rows have \\[73, 73\\]"):
        masked_video_tokens(b.attention_mask, is_video, keep[:, :72])
