"""PACED inside other trainers.

- `draws`: framework-free building blocks (rank-consistent draws, outcome posting).
- `trl`: a sampler, a reward wrapper, an estimation callback and loss weighting for TRL's
  GRPOTrainer / DistillationTrainer / SFTTrainer (needs the `paced[trl]` extra).
- `stateful`: a sampler for torchdata's StatefulDataLoader (what verl checkpoints).
- `prime_rl`: prime-rl's TaskSampler on verifiers' own Task / Episode (the `prime-rl` extra).
- `slime`: a `--data-source-path` class and a `--rollout-all-samples-process-path` function.
- `nemo_rl`: a `data.custom_dataloader` function and the records that feed rewards back.
- `attempts`: a group's graded and errored attempts, posted exactly once.
- `verl`: verl's v1 replay buffer and dataset (in its own environment).

Nothing here imports verl (it pulls Ray) and each module imports its framework lazily.
"""
