"""A real paced service (SQLite, its own process) for the trainer-integration tests."""

from __future__ import annotations

import os

import pytest

from trainer_client.local.service import local_service

# No test here may reach a model hub: the models and tokenizers are built in-process.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def service_url(tmp_path_factory) -> str:
    with local_service(tmp_path_factory.mktemp("paced-integrations"), timeout_s=60) as url:
        yield url


@pytest.fixture
def fresh_service(tmp_path_factory):
    """Start another service on an empty database: `with fresh_service() as url: ...`."""
    return lambda: local_service(tmp_path_factory.mktemp("paced-fresh"), timeout_s=60)
