"""The framework floor: a bare uvicorn + FastAPI app on the same stack as `paced serve`
(uvicorn with httptools and uvloop, one process) that answers the batch route's path with
fixed bytes — the bytes a real batch response carried. What a request costs before the
service does any work of its own, measured in the same run as the service.

Three routes, answering the same bytes:
- bare: reads the body and returns the payload (no body model, no dependency);
- model: what FastAPI adds for a route declared like the real one (a pydantic body model,
  an async dependency, a header parameter), still with no work behind it;
- the batch route's own path, /v1/runs/{run}/batches, bare, so the project's typed clients
  can be timed against the floor: the payload, or with a columns payload given, that one
  to a client whose Accept names the columnar format (as the service answers).

Run as a process: python -m bench._floor PORT PAYLOAD_FILE MEDIA_TYPE [COLUMNS_PAYLOAD_FILE]
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, Header, Request, Response
from pydantic import BaseModel, Field

from service.spawn import free_port

ROOT = Path(__file__).resolve().parents[1]
BARE_PATH = "/floor/bare"
MODEL_PATH = "/floor/model"
BATCH_PATH = "/v1/runs/{run}/batches"
COLUMNS = b"application/vnd.paced.batch-columns+json"


class Body(BaseModel):
    size: int = Field(ge=1)
    seed: int | None = None


async def dependency(request: Request) -> object:
    return request.app.state


def build_app(payload: bytes, media_type: str, columns: bytes | None = None) -> FastAPI:
    app = FastAPI()

    @app.post(BATCH_PATH)
    async def batch(request: Request) -> Response:
        await request.body()
        if columns is not None and COLUMNS in (request.headers.get("accept") or "").encode():
            return Response(columns, media_type=COLUMNS.decode())
        return Response(payload, media_type=media_type)

    @app.post(BARE_PATH)
    async def bare(request: Request) -> Response:
        await request.body()
        return Response(payload, media_type=media_type)

    @app.post(MODEL_PATH)
    async def model(
        body: Body,
        state: object = Depends(dependency),
        accept: Annotated[str | None, Header()] = None,
    ) -> Response:
        return Response(payload, media_type=media_type)

    return app


@contextlib.contextmanager
def floor_server(payload: bytes, media_type: str, columns: bytes | None = None):
    """Start the floor app in its own process; yields (base_url, pid)."""
    port = free_port()
    with (
        tempfile.NamedTemporaryFile(suffix=".bin") as file,
        tempfile.NamedTemporaryFile(suffix=".bin") as columns_file,
    ):
        file.write(payload)
        file.flush()
        command = [sys.executable, "-m", "bench._floor", str(port), file.name, media_type]
        if columns is not None:
            columns_file.write(columns)
            columns_file.flush()
            command.append(columns_file.name)
        proc = subprocess.Popen(command, cwd=ROOT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.post(base + BARE_PATH, content=b"{}", timeout=1)
                    break
                except httpx.TransportError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("the floor app did not start") from None
                    time.sleep(0.05)
            yield base, proc.pid
        finally:
            proc.terminate()
            proc.wait(10)


def main() -> None:
    import uvicorn

    port, payload_file, media_type = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    columns = Path(sys.argv[4]).read_bytes() if len(sys.argv) > 4 else None
    app = build_app(payload_file.read_bytes(), media_type, columns)
    # The same server stack as `paced serve` (uvicorn picks httptools and uvloop), without
    # the access log: the floor is the framework, not a logging choice.
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
