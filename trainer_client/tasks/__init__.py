"""Tasks to train on: the built-in arithmetic task, word problems for SmolLM2, the toy task of the
integration examples, each with what builds it and what grades it."""
