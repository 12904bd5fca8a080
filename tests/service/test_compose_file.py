"""docker-compose.yml cannot be run here (no Docker engine): check its structure instead."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_runs_postgres_then_migrations_then_the_service():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"db", "migrate", "service"}
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
