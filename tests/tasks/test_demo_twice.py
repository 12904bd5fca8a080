"""`make demo` against one running service, twice: its setup gets the dataset and the run it
made the first time (get-or-create) instead of failing with a Conflict."""

from __future__ import annotations

import pytest

from trainer_client.client import PacedClient
from trainer_client.local.service import local_service
from trainer_client.tasks.arithmetic import demo


@pytest.mark.timeout(600)
def test_the_demo_runs_twice_against_one_service(tmp_path, capsys):
    with local_service(tmp_path / "paced", timeout_s=60) as url:
        for attempt in range(2):
            argv = ["--url", url, "--steps", "2", "--task-dir", str(tmp_path / "task")]
            assert demo.main([*argv, "--workdir", str(tmp_path / f"demo{attempt}")]) == 0
        with PacedClient(url) as paced:
            (run,) = paced.list_runs()
            assert run.name == "demo" and run.step is not None
            assert paced.get_dataset(run.dataset).problem_count > 0
    assert capsys.readouterr().out.count("demo wall time") == 2
