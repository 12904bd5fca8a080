"""A new user's client: generated from the OpenAPI document by openapi-python-client (a real
generator, run as a subprocess), then driven through the main flow and typed errors.

What it shows: function names are the operation ids (`draw_batch.sync`), and every error the
service answers comes back as a typed model (ErrorMessage, HTTPValidationError) instead of
"unexpected status".
"""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

GENERATOR = Path(sys.executable).with_name("openapi-python-client")
PACKAGE = "paced_generated_client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory):
    from service.app import create_app
    from service.settings import Settings

    workdir = tmp_path_factory.mktemp("generated")
    app = create_app(Settings(database_url=f"sqlite:///{workdir / 'unused.db'}"))
    (workdir / "openapi.json").write_text(json.dumps(app.openapi()))
    app.state.ctx.engine.dispose()
    (workdir / "config.yaml").write_text("post_hooks: []\n")  # no formatter run on its output
    assert GENERATOR.exists(), "openapi-python-client is a dev dependency (make install)"
    command = [str(GENERATOR), "generate", "--path", "openapi.json", "--meta", "none"]
    command += ["--output-path", PACKAGE, "--config", "config.yaml", "--fail-on-warning"]
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(workdir))
    try:
        yield lambda name: importlib.import_module(f"{PACKAGE}.{name}")
    finally:
        sys.path.remove(str(workdir))
        for module in [m for m in sys.modules if m.startswith(PACKAGE)]:
            del sys.modules[module]
        shutil.rmtree(workdir / PACKAGE, ignore_errors=True)


def test_the_generated_client_drives_the_main_flow_and_gets_typed_errors(generated, client):
    api = generated("client").Client(base_url=str(client.base_url)).set_httpx_client(client)
    models = generated("models")
    datasets, runs = generated("api.datasets"), generated("api.runs")
    for name in ("datasets.create_dataset", "datasets.upsert_problems", "runs.create_run"):
        generated(f"api.{name}")  # a submodule is an attribute of its package once imported
    for name in ("post_outcomes", "draw_batch", "get_run"):
        generated(f"api.runs.{name}")

    created = datasets.create_dataset.sync(client=api, body=models.DatasetCreate(name="math"))
    assert isinstance(created, models.DatasetOut) and created.name == "math"
    problems = [models.ProblemIn(id=f"p{i}", prompt=f"{i}+1?", answer=str(i + 1)) for i in range(4)]
    upserted = datasets.upsert_problems.sync(
        "math", client=api, body=models.ProblemsUpsert(problems=problems)
    )
    assert (upserted.inserted, upserted.updated) == (4, 0)
    run = runs.create_run.sync(client=api, body=models.RunCreate(name="r1", dataset="math"))
    assert isinstance(run, models.RunOut) and run.dataset == "math"
    outcomes = [
        models.OutcomeIn(problem_id=f"p{i}", attempts=4, successes=i, step=1) for i in range(4)
    ]
    accepted = runs.post_outcomes.sync(
        "r1", client=api, body=models.OutcomesPost(outcomes=outcomes)
    )
    assert accepted.accepted == 4
    batch = runs.draw_batch.sync("r1", client=api, body=models.BatchRequest(size=3, seed=7))
    assert isinstance(batch, models.Batch) and len(batch.items) == 3
    # w(p) = p(1-p) is 0 at p=0 and p=1: only p1..p3 (pass rates 1/4..3/4) can be drawn.
    assert {item.problem_id for item in batch.items} <= {"p1", "p2", "p3"}

    # Get-or-create: the same settings give the run back (200, typed as the 201 is).
    again = runs.create_run.sync_detailed(
        client=api, body=models.RunCreate(name="r1", dataset="math")
    )
    assert again.status_code == 200 and isinstance(again.parsed, models.RunOut)
    # Errors come back typed, with the service's message.
    other = models.RunCreate(name="r1", dataset="math", kernel=models.Kernel(alpha=2.0))
    conflict = runs.create_run.sync_detailed(client=api, body=other)
    assert conflict.status_code == 409
    assert isinstance(conflict.parsed, models.ErrorMessage)
    assert conflict.parsed.detail == "run 'r1' exists with kernel.alpha 1.0, not 2.0"
    missing = runs.get_run.sync_detailed("nope", client=api)
    assert missing.status_code == 404 and isinstance(missing.parsed, models.ErrorMessage)
    invalid = runs.draw_batch.sync_detailed("r1", client=api, body=models.BatchRequest(size=0))
    assert invalid.status_code == 422
    assert isinstance(invalid.parsed, models.HTTPValidationError)
    assert invalid.parsed.detail[0].loc == ["body", "size"]
