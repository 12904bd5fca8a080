"""`pip install .` is the light client: what a user puts into a trainer's environment.

In a fresh virtual environment (pip's cache is fine), installing the repository root must bring
httpx, pydantic, orjson and what they need — nothing of the server, the trainer or numpy — and
that client alone must drive a live server through the main flow. `paced serve` there must
name the install line that adds the server and exit non-zero.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import venv
from pathlib import Path

import pytest

from service.spawn import ServiceProcess

ROOT = Path(__file__).resolve().parents[2]
# Distributions that must not come with the client (the list, plus the service package).
FORBIDDEN = {
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "numpy",
    "scipy",
    "prometheus-client",
    "torch",
    "paced-curriculum-server",
}
ALLOWED = {
    "paced-curriculum",
    "httpx",
    "httpcore",
    "h11",
    "anyio",
    "sniffio",
    "idna",
    "certifi",
    "pydantic",
    "pydantic-core",
    "annotated-types",
    "typing-extensions",
    "typing-inspection",
    "orjson",
}
# What a fresh venv holds before anything is installed.
TOOLING = {"pip", "setuptools", "wheel"}
# The client's closure measured 13.7 MB here (docs/client.md): a guard against a heavy
# dependency slipping in, with room for the dependencies' own growth.
MAX_INSTALLED_MB = 40

CLIENT_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from trainer_client import PacedClient

    with PacedClient(sys.argv[1]) as paced:
        paced.create_dataset("light", "installed alone")
        paced.upsert_problems(
            "light", [{"id": f"q{i}", "prompt": f"{i}+1=", "answer": str(i + 1)} for i in range(6)]
        )
        paced.create_run("light-run", "light")
        paced.post_outcomes(
            "light-run",
            [{"problem_id": f"q{i}", "attempts": 8, "successes": i, "step": 0} for i in range(6)],
        )
        batch = paced.batch("light-run", size=4, seed=7)
        print(json.dumps({
            "ids": [item.problem_id for item in batch.items],
            "weights": {item.problem_id: item.weight for item in batch.items},
            "available": batch.available,
        }))
    """
)


@pytest.fixture(scope="module")
def light_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("light-client") / "venv"
    venv.EnvBuilder(with_pip=True).create(where)
    python = where / "bin" / "python"
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(ROOT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    return where


def distributions(python: Path) -> dict[str, float]:
    """Installed distribution name -> size of its files in MB, as the venv's Python sees it."""
    probe = (
        "import json, importlib.metadata as m, os\n"
        "out = {}\n"
        "for d in m.distributions():\n"
        "    size = sum(os.path.getsize(f) for f in (d.locate_file(p) for p in d.files or [])"
        " if os.path.isfile(f))\n"
        "    out[d.metadata['Name'].lower().replace('_', '-')] = size / 1e6\n"
        "print(json.dumps(out))\n"
    )
    found = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(found.stdout)


def test_the_base_install_is_the_light_client_only(light_venv: Path):
    names = set(distributions(light_venv / "bin" / "python")) - TOOLING
    assert not names & FORBIDDEN, names & FORBIDDEN
    assert names <= ALLOWED, f"unexpected distributions: {sorted(names - ALLOWED)}"
    assert "paced-curriculum" in names


def test_the_installed_client_is_small(light_venv: Path):
    sizes = distributions(light_venv / "bin" / "python")
    total = sum(size for name, size in sizes.items() if name not in TOOLING)
    print(f"light client installed size: {total:.1f} MB")
    assert total < MAX_INSTALLED_MB


def test_the_service_package_is_not_there(light_venv: Path):
    found = subprocess.run(
        [str(light_venv / "bin" / "python"), "-c", "import service"],
        capture_output=True,
        text=True,
        cwd=light_venv,  # not the checkout: its service/ folder would be importable from there
    )
    assert found.returncode != 0
    assert "No module named 'service'" in found.stderr


def test_paced_serve_names_the_install_line_and_fails(light_venv: Path):
    served = subprocess.run(
        [str(light_venv / "bin" / "paced"), "serve", "--port", "1"],
        capture_output=True,
        text=True,
        cwd=light_venv,
        timeout=60,
    )
    assert served.returncode != 0
    lines = served.stderr.strip().splitlines()
    assert len(lines) == 1, served.stderr
    assert "pip install 'paced-curriculum[server]'" in lines[0]


def test_the_light_client_drives_a_live_server(light_venv: Path, tmp_path: Path):
    script = tmp_path / "drive.py"
    script.write_text(CLIENT_SCRIPT, encoding="utf-8")
    with ServiceProcess(workdir=tmp_path, database_url=f"sqlite:///{tmp_path / 'p.db'}") as server:
        run = subprocess.run(
            [str(light_venv / "bin" / "python"), str(script), server.url],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
        )
    assert run.returncode == 0, run.stderr[-3000:]
    drawn = json.loads(run.stdout)
    # q0 solved 0 of 8 (weight 0); q1..q5 have 0 < p < 1, so they are the ones drawn
    assert len(drawn["ids"]) == 4
    assert set(drawn["ids"]) <= {"q1", "q2", "q3", "q4", "q5"}
    assert drawn["available"] == 5
    for pid, weight in drawn["weights"].items():
        p = int(pid[1:]) / 8
        assert weight == pytest.approx(p * (1 - p))
