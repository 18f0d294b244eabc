"""The embedded (CPU) tier's data and model: SynthVideoQA, a word-level tokenizer, a tiny
LLaVA-OneVision trained here from scratch, and option-letter multiple-choice evaluation.

    from replicate.embedded.train import load_checkpoint
    from replicate.embedded.evaluate import evaluate
    from replicate.embedded.synthvqa import make_split
    model, tok, data = load_checkpoint("results/embedded/model")
    evaluate(model, tok, make_split("test", 200, cfg=data))
"""
