"""The model layer: build a tiny base model, load any causal LM, SFT training, one-pass forward, evaluation."""
