"""docker-compose.yml cannot be run here (no Docker engine), so it is read as data: the
services start in order, secrets come from the environment (or .env) and are required, no
password is written in the file, and the `scale` profile is the production shape of
docs/scaling.md (two replicas on one database behind HAProxy). Where a compose CLI is
installed, `compose config` confirms it refuses to render without the secrets."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SECRETS = ("POSTGRES_PASSWORD", "PACED_ADMIN_TOKEN")
# ${VAR:?message}: compose stops with the message when VAR is unset or empty.
REQUIRED = re.compile(r"\$\{(?P<name>\w+):\?(?P<message>[^}]+)\}")
SECRET_KEY = re.compile(r"PASSWORD|TOKEN|SECRET", re.I)
URL_PASSWORD = re.compile(r"://[^:/@]+:(?P<password>[^@]+)@")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def replicas(compose: dict) -> dict[str, dict]:
    """The services that run `paced serve`."""
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("command", [])[:2] == ["paced", "serve"]
    }


def test_compose_runs_postgres_then_migrations_then_the_service(compose):
    services = compose["services"]
    assert {name for name, s in services.items() if "profiles" not in s} == {
        "db",
        "migrate",
        "service",
    }
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert services["migrate"]["command"] == ["paced", "db", "upgrade"]
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    deps = services["service"]["depends_on"]
    assert deps["db"]["condition"] == "service_healthy"
    assert deps["migrate"]["condition"] == "service_completed_successfully"
    assert "/healthz" in " ".join(services["service"]["healthcheck"]["test"])
    for name in ("migrate", "service"):
        url = services[name]["environment"]["PACED_DATABASE_URL"]
        assert url.startswith("postgresql://") and "@db:5432/" in url
    assert (ROOT / "Dockerfile").exists()


def test_every_secret_is_required_from_the_environment(compose):
    seen = set()
    for name, service in compose["services"].items():
        for key, value in environment(service).items():
            if SECRET_KEY.search(key):
                match = REQUIRED.fullmatch(value)
                assert match, f"{name}.{key} = {value!r} is not a required ${{VAR:?...}}"
                seen.add(match["name"])
            url = URL_PASSWORD.search(value)
            if url:
                assert REQUIRED.fullmatch(url["password"]), f"{name}.{key}: literal password"
    assert seen == set(SECRETS)


def test_the_missing_secret_messages_point_to_the_example_file(compose):
    text = COMPOSE.read_text()
    names = {m["name"]: m["message"] for m in REQUIRED.finditer(text)}
    assert set(names) == set(SECRETS)
    assert all(".env.example" in message and name in message for name, message in names.items())
    example = (ROOT / ".env.example").read_text()
    for name in SECRETS:
        # Listed, and empty: copying the example without filling it in still fails clearly.
        assert re.search(rf"^{name}=$", example, re.M), name
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_exposed_replicas_require_the_admin_token_and_share_one_database(compose):
    served = replicas(compose)
    assert set(served) == {"service", "service-2"}
    urls = set()
    for name, service in served.items():
        assert service["command"][2:4] == ["--host", "0.0.0.0"], name
        env = environment(service)
        assert REQUIRED.fullmatch(env["PACED_ADMIN_TOKEN"])["name"] == "PACED_ADMIN_TOKEN"
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        urls.add(env["PACED_DATABASE_URL"])
    (url,) = urls
    assert (
        "@db:5432/" in url
        and url == environment(compose["services"]["migrate"])["PACED_DATABASE_URL"]
    )


def test_the_scale_profile_puts_haproxy_in_front_of_both_replicas(compose):
    services = compose["services"]
    scaled = {name for name, s in services.items() if "scale" in s.get("profiles", [])}
    assert scaled == {"service-2", "lb"}
    assert "profiles" not in services["service"]  # `docker compose up` alone: one replica
    lb = services["lb"]
    assert lb["image"].startswith("haproxy:")
    assert "./deploy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" in lb["volumes"]
    env = environment(lb)
    assert {env["PACED_REPLICA_1"], env["PACED_REPLICA_2"]} == {"service:8000", "service-2:8000"}
    assert env["PACED_LB_BIND"] == ":8080" and lb["ports"] == ["${PACED_LB_PORT:-8080}:8080"]
    assert {name: dep["condition"] for name, dep in lb["depends_on"].items()} == {
        "service": "service_healthy",
        "service-2": "service_healthy",
    }
    config = (ROOT / "deploy" / "haproxy.cfg").read_text()
    for line in (
        "balance roundrobin",
        "option httpchk GET /healthz",
        'server replica1 "${PACED_REPLICA_1}"',
        'server replica2 "${PACED_REPLICA_2}"',
        'bind "${PACED_LB_BIND}"',
    ):
        assert line in config


def compose_cli() -> list[str] | None:
    """`docker compose` (the plugin) or `docker-compose` (v1), whichever is installed."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def compose_config(cli: list[str], tmp_path: Path, *args: str, **secrets: str):
    """`compose config` with only `secrets` set: an empty --env-file, so a developer's own
    .env or exported secrets cannot make the refusal pass unnoticed."""
    empty = tmp_path / "empty.env"
    empty.write_text("")
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    command = [*cli, "--env-file", str(empty), "-f", str(COMPOSE), *args]
    return subprocess.run(command, env={**env, **secrets}, capture_output=True, text=True)


def test_compose_config_refuses_without_the_secrets_and_renders_with_them(tmp_path):
    cli = compose_cli()
    if cli is None:
        # .ci/run installs one and sets PACED_COMPOSE_REQUIRED: there a missing CLI fails.
        if os.environ.get("PACED_COMPOSE_REQUIRED") == "1":
            pytest.fail("PACED_COMPOSE_REQUIRED=1 but no compose CLI is installed")
        pytest.skip("no compose CLI (docker compose / docker-compose) installed")
    missing = compose_config(cli, tmp_path, "config")
    assert missing.returncode != 0
    assert "see .env.example" in missing.stderr
    assert re.search(r"POSTGRES_PASSWORD|PACED_ADMIN_TOKEN", missing.stderr)
    only_password = compose_config(cli, tmp_path, "config", POSTGRES_PASSWORD="pw123")
    assert only_password.returncode != 0 and "PACED_ADMIN_TOKEN" in only_password.stderr

    secrets = {"POSTGRES_PASSWORD": "pw123", "PACED_ADMIN_TOKEN": "tok456"}
    rendered = compose_config(cli, tmp_path, "config", **secrets)
    assert rendered.returncode == 0, rendered.stderr
    services = yaml.safe_load(rendered.stdout)["services"]
    assert environment(services["db"])["POSTGRES_PASSWORD"] == "pw123"
    assert environment(services["service"])["PACED_DATABASE_URL"] == (
        "postgresql://paced:pw123@db:5432/paced"
    )
    assert environment(services["service"])["PACED_ADMIN_TOKEN"] == "tok456"
    scaled = compose_config(cli, tmp_path, "--profile", "scale", "config", "--services", **secrets)
    assert scaled.returncode == 0, scaled.stderr
    assert set(scaled.stdout.split()) == {"db", "migrate", "service", "service-2", "lb"}
