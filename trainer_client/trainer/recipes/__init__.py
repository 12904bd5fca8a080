"""Recipes on the shared training loop: distillation on teacher references, and on-policy
self-distillation."""
