"""Servers started on this machine for demos, tests and benches: `paced serve` (service.py,
the one module here that imports the service) and vLLM's OpenAI-compatible server."""
