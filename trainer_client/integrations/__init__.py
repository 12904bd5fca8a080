"""PACED inside other trainers.

- `draws`: framework-free building blocks (rank-consistent draws, outcome posting).
- `trl`: a sampler, a reward wrapper, an estimation callback and loss weighting for TRL's
  GRPOTrainer / DistillationTrainer / SFTTrainer (needs the `paced[trl]` extra).
- `stateful`: a sampler for torchdata's StatefulDataLoader (what verl checkpoints).
- `prime_rl`: a prime-rl style TaskSampler adapter.

Nothing here imports verl (it pulls Ray) and each module imports its framework lazily.
"""
