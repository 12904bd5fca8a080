"""Rollout throughput: TransformersEngine vs in-process vLLM vs the OpenAI engine over vLLM's
server, on the same prompts, K and max tokens, in one run.

Runs in the vLLM environment (make vllm-env): .venv-vllm/bin/python bench/rollouts.py
Prints one JSON object per engine, then a summary object with the ratios. The model is a
random tiny Qwen2 (hidden 256, 4 heads of 64, 4 layers) with the task's tokenizer, built
here; prompts are the task's arithmetic problems. Each engine: one warm-up call, then
--repeats timed calls; medians reported. Engine start-up is reported separately.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# bench/http.py would shadow the standard library's http (torch and httpx import it) and
# vLLM's spawned processes re-run this file's imports: keep bench/ off the path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))


def build_model(directory: Path):
    import torch
    import transformers

    from trainer_client.tasks.arithmetic.tokenizer import build_tokenizer

    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    config = transformers.Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=256,
        intermediate_size=768,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory / "tokenizer")
    return model, tokenizer


def measure(name: str, engine, prompts: list[str], args, startup_s: float) -> dict:
    def run(seed: int) -> tuple[float, int]:
        started = time.perf_counter()
        groups = engine.generate(prompts, args.k, seed=seed, max_new_tokens=args.max_tokens)
        elapsed = time.perf_counter() - started
        assert [len(group) for group in groups] == [args.k] * len(prompts)
        return elapsed, sum(len(c.token_ids) for group in groups for c in group)

    run(0)  # warm-up
    results = [run(seed) for seed in range(1, args.repeats + 1)]
    seconds = statistics.median(elapsed for elapsed, _ in results)
    tokens = statistics.median(count for _, count in results)
    completions = len(prompts) * args.k
    record = {
        "engine": name,
        "prompts": len(prompts),
        "k": args.k,
        "max_tokens": args.max_tokens,
        "median_s": round(seconds, 3),
        "completions_per_s": round(completions / seconds, 1),
        "tokens_per_s": round(tokens / seconds, 1),
        "median_tokens": tokens,
        "startup_s": round(startup_s, 1),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(record), flush=True)
    return record


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch

    from trainer_client.local.vllm_server import vllm_server
    from trainer_client.tasks.arithmetic.problems import make_problems
    from trainer_client.trainer.engines.openai_engine import OpenAIEngine
    from trainer_client.trainer.engines.transformers_engine import TransformersEngine
    from trainer_client.trainer.engines.vllm_checkpoint import export_for_vllm
    from trainer_client.trainer.engines.vllm_engine import VLLMEngine

    torch.set_num_threads(os.cpu_count() or 2)
    work = Path(tempfile.mkdtemp(prefix="paced-bench-rollouts-"))
    model, tokenizer = build_model(work / "source")
    export_for_vllm(model, tokenizer, work / "export")
    problems = make_problems(seed=0, per_level=args.prompts, levels=[2])[: args.prompts]
    prompts = [problem.prompt for problem in problems]

    records = []
    started = time.perf_counter()
    engine = TransformersEngine(model, tokenizer, batch_size=512, add_special_tokens=True)
    records.append(measure("transformers", engine, prompts, args, time.perf_counter() - started))

    started = time.perf_counter()
    vllm_engine = VLLMEngine(work / "export", seed=0, workdir=work / "engine")
    startup = time.perf_counter() - started
    try:
        records.append(measure("vllm (in-process)", vllm_engine, prompts, args, startup))
    finally:
        vllm_engine.close()

    started = time.perf_counter()
    with vllm_server(work / "export", log_path=work / "server.log") as url:
        startup = time.perf_counter() - started
        client = OpenAIEngine(url, "student", max_concurrency=args.prompts)
        records.append(measure("openai (vllm server)", client, prompts, args, startup))

    base = records[0]["tokens_per_s"]
    summary = {
        "summary": "rollouts",
        "tokens_per_s_vs_transformers": {
            r["engine"]: round(r["tokens_per_s"] / base, 2) for r in records
        },
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":  # vLLM spawns its engine core: the guard is required
    sys.exit(main())
