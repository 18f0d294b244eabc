"""The cpu tier's pooled video does not depend on the transformers release: 5.17's
``get_video_features`` returns the frames' tokens, later ones append the image_newline; both give
the placeholder count HF's own forward scatters (CI runs this at 5.17 and at the newest release)."""
from __future__ import annotations

import torch

from replicate.synthvqa import data as sv
from replicate.synthvqa.evaluate import collate
from replicate.synthvqa.model import (TinyArch, build_inputs_embeds, build_model, lm_logits, num_video_tokens,
                                      pooled_video, tokens_per_frame, video_features)
from replicate.synthvqa.tokenizer import build_tokenizer, prompt_texts

CFG = sv.SynthConfig(frames=8, size=56, small_object_px=8, event_object_px=8, light_px=8, ball_px=8)


def test_pooled_video_and_placeholders_on_the_installed_release():
    tok = build_tokenizer(CFG, prompt_texts(False, CFG))
    model = build_model(tok, TinyArch(image_size=56, text_layers=1), seed=0)
    b = collate(list(sv.make_split("val", 2, cfg=CFG)), tok, model.config)
    with torch.no_grad():
        visual, newline = pooled_video(model, b.pixel_values_videos)
        feats = video_features(model, b.pixel_values_videos)
        ref = model(input_ids=b.input_ids, attention_mask=b.attention_mask,
                    pixel_values_videos=b.pixel_values_videos).logits      # raises on a count mismatch
        mine = lm_logits(model, build_inputs_embeds(model, b.input_ids, feats), b.attention_mask)
    assert visual.shape[1] == 8 * tokens_per_frame(model.config)
    torch.testing.assert_close(newline, model.model.image_newline[None].expand(2, -1))
    assert feats.shape[1] == num_video_tokens(model.config, 8) == int((b.input_ids[0] == model.config.video_token_id).sum())
    real = b.attention_mask.bool()
    torch.testing.assert_close(mine[real], ref[real], rtol=1e-4, atol=1e-5)
