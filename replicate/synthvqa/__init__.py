"""The cpu tier's data and model: SynthVideoQA, a word-level tokenizer, a tiny
LLaVA-OneVision trained here from scratch, and option-letter multiple-choice evaluation.

    from replicate.synthvqa.train import load_checkpoint
    from replicate.synthvqa.evaluate import evaluate
    from replicate.synthvqa.data import make_split
    model, tok, data = load_checkpoint("results/cpu/model")
    evaluate(model, tok, make_split("test", 200, cfg=data))
"""
