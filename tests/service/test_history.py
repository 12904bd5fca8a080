"""Run history snapshots and the dashboard overview (a summary, whatever the run size)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import insert, update

from service.app import create_app
from service.domain.history import ids_to_thin
from service.models import Dataset, Problem, ProblemStats, Run
from service.settings import Settings
from service.store import history as history_store
from tests.service.helpers import make_dataset, make_run, post_outcomes

ADMIN = "admin-secret-token"


def make_client(database_url: str, **overrides) -> tuple[TestClient, object]:
    options = {"sync_interval_s": 0.0, "history_min_interval_s": 0.0, **overrides}
    app = create_app(Settings(database_url=database_url, **options))
    return TestClient(app), app


@pytest.fixture
def hclient(database_url):
    """A client whose service snapshots on every ingest and keeps at most 8 points."""
    client, app = make_client(database_url, history_max_points=8)
    with client:
        yield client
    app.state.ctx.engine.dispose()


def history(client, run: str) -> list[dict]:
    response = client.get(f"/v1/runs/{run}/history")
    assert response.status_code == 200, response.text
    return response.json()["items"]


def outcome(pid: str, n: int, k: int, step: int | None) -> dict:
    return {"problem_id": pid, "attempts": n, "successes": k, "step": step}


# ---- recording --------------------------------------------------------------------------


def test_snapshot_per_step_matches_the_difficulty_report(hclient):
    ids = make_dataset(hclient, n=10)
    make_run(hclient, estimator={"window": "all"})
    expected = []
    for step, ks in enumerate([[0, 0, 4, 8], [4, 8, 8, 8, 2]]):
        batch = [outcome(ids[i], 8, k, step) for i, k in enumerate(ks)]
        assert post_outcomes(hclient, "run1", batch).status_code == 200
        expected.append(hclient.get("/v1/runs/run1/difficulty").json())
    points = history(hclient, "run1")
    assert [p["step"] for p in points] == [0, 1]
    for point, report in zip(points, expected, strict=True):
        assert point["zones"] == report["zones"]
        assert point["mean_weight"] == pytest.approx(report["mean_weight"])
        assert point["effective_problems"] == pytest.approx(report["effective_problems"])
        assert point["created_at"].endswith("Z") or "+00:00" in point["created_at"]
    # Step 0: pass rates 0, 0, 0.5, 1 -> mean 0.375. Counts add up, so at step 1:
    # 4/16, 8/16, 12/16, 16/16 and 2/8 -> mean 0.55.
    assert points[0]["mean_pass_rate"] == pytest.approx(0.375)
    assert points[1]["mean_pass_rate"] == pytest.approx(0.55)


def test_same_step_replaces_its_snapshot_with_the_newest_state(hclient):
    ids = make_dataset(hclient, n=4)
    make_run(hclient)
    post_outcomes(hclient, "run1", [outcome(ids[0], 4, 2, 3)])
    post_outcomes(hclient, "run1", [outcome(ids[1], 4, 4, 3)])
    (point,) = history(hclient, "run1")
    assert point["step"] == 3
    assert point["zones"] == {"unseen": 2, "intractable": 0, "frontier": 1, "mastered": 1}


def test_outcomes_without_steps_are_recorded_at_step_zero(hclient):
    ids = make_dataset(hclient, n=3)
    make_run(hclient)
    post_outcomes(hclient, "run1", [outcome(ids[0], 2, 1, None)])
    (point,) = history(hclient, "run1")
    assert point["step"] == 0 and point["zones"]["frontier"] == 1


def test_history_is_bounded_and_keeps_the_first_and_newest_steps(hclient):
    ids = make_dataset(hclient, n=3)
    make_run(hclient)
    for step in range(30):
        post_outcomes(hclient, "run1", [outcome(ids[step % 3], 4, step % 5, step)])
        assert len(history(hclient, "run1")) <= 8
    steps = [p["step"] for p in history(hclient, "run1")]
    assert steps[0] == 0 and steps[-1] == 29
    assert steps == sorted(set(steps))
    # The newer half is dense: recent steps are all there.
    assert steps[-4:] == [26, 27, 28, 29]


def stored_points(app, run: str = "run1") -> list[dict]:
    """The run's history rows as stored (no live point): what another replica reads back."""
    ctx = app.state.ctx
    with ctx.transaction() as uow:
        run_id = next(r.id for r in uow.session.query(Run).filter(Run.name == run))
        return [
            {"step": row.step, "frontier": row.frontier, "unseen": row.unseen}
            for row in history_store.list_for_run(uow.session, run_id)
        ]


def cards(client, run: str = "run1") -> dict:
    return client.get(f"/v1/runs/{run}/difficulty").json()["zones"]


def test_a_step_change_is_stored_at_once_and_the_same_step_is_throttled(database_url):
    client, app = make_client(database_url, history_min_interval_s=3600.0)
    with client:
        ids = make_dataset(client, n=3)
        make_run(client)
        post_outcomes(client, "run1", [outcome(ids[0], 4, 2, 0)])
        post_outcomes(client, "run1", [outcome(ids[1], 4, 2, 0)])  # within the interval
        assert stored_points(app) == [{"step": 0, "frontier": 1, "unseen": 2}]
        post_outcomes(client, "run1", [outcome(ids[2], 4, 2, 1)])
        assert [(p["step"], p["frontier"]) for p in stored_points(app)] == [(0, 1), (1, 3)]
    app.state.ctx.engine.dispose()


def test_history_and_summaries_agree_with_the_cards_after_every_acknowledged_post(database_url):
    """Several posts at one step (a client splits > 10k outcomes so), posts without a step,
    and a second replica reading: the last point is always what the cards say."""
    client, app = make_client(database_url, history_min_interval_s=3600.0)
    reader, reader_app = make_client(database_url, history_min_interval_s=3600.0)
    with client, reader:
        ids = make_dataset(client, n=6)
        make_run(client)
        for chunk in ([0, 1], [2, 3], [4]):  # one step, three posts
            post_outcomes(client, "run1", [outcome(ids[i], 4, 2, 5) for i in chunk])
        post_outcomes(client, "run1", [outcome(ids[5], 4, 4, None)])  # no step: step 5
        expected = cards(client)
        assert expected == {"unseen": 0, "intractable": 0, "frontier": 5, "mastered": 1}
        for view in (client, reader):
            last = history(view, "run1")[-1]
            assert (last["step"], last["zones"]) == (5, expected)
            (summary,) = view.get("/v1/runs-summary").json()["items"]
            if view is client:  # the replica that took the posts has the run's index loaded
                assert summary["latest"]["zones"] == expected
        assert reader.get("/v1/runs/run1/overview").json()["difficulty"]["zones"] == expected
        assert stored_points(app)[-1]["frontier"] == 2  # the stored row was throttled...
    for a in (app, reader_app):
        a.state.ctx.engine.dispose()


def test_a_throttled_snapshot_is_stored_when_its_interval_ends(database_url):
    client, app = make_client(database_url, history_min_interval_s=0.3)
    with client:
        ids = make_dataset(client, n=4)
        make_run(client)
        for i in range(4):
            post_outcomes(client, "run1", [outcome(ids[i], 4, 2, 0)])
        deadline = time.monotonic() + 10
        while stored_points(app)[-1]["frontier"] != 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stored_points(app) == [{"step": 0, "frontier": 4, "unseen": 0}]
    app.state.ctx.engine.dispose()


def test_a_failing_snapshot_does_not_fail_the_committed_ingest(hclient, monkeypatch):
    ids = make_dataset(hclient, n=2)
    make_run(hclient)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(history_store, "upsert_snapshot", broken)
    assert post_outcomes(hclient, "run1", [outcome(ids[0], 4, 2, 0)]).status_code == 200
    assert hclient.get(f"/v1/runs/run1/problems/{ids[0]}").json()["attempts"] == 4
    assert stored_points(hclient.app) == []  # nothing stored...
    (live,) = history(hclient, "run1")  # ...yet the history still shows the state now
    assert live["zones"]["frontier"] == 1


def test_history_of_an_unknown_run_is_404(hclient):
    assert hclient.get("/v1/runs/nope/history").status_code == 404
    assert hclient.get("/v1/runs/nope/overview").status_code == 404


@given(st.integers(1, 300), st.integers(8, 64))
def test_thinning_keeps_at_most_max_points_and_the_ends(appends, max_points):
    ids: list[int] = []
    for new in range(appends):
        ids.append(new)
        drop = set(ids_to_thin(ids, max_points))
        assert 0 not in drop and new not in drop
        ids = [i for i in ids if i not in drop]
        assert len(ids) <= max_points
    assert ids[0] == 0 and ids[-1] == appends - 1


# ---- overview ---------------------------------------------------------------------------


def test_overview_ranks_frontier_by_weight_and_mastered_by_recency(hclient):
    ids = make_dataset(hclient, n=8)
    make_run(hclient, kernel={"alpha": 1.0, "beta": 1.0})
    post_outcomes(
        hclient,
        "run1",
        [
            outcome(ids[0], 10, 5, 1),  # frontier, w = 0.25
            outcome(ids[1], 10, 1, 2),  # frontier, w = 0.09
            outcome(ids[2], 10, 3, 3),  # frontier, w = 0.21
            outcome(ids[3], 4, 4, 5),  # mastered at step 5
            outcome(ids[4], 4, 4, 7),  # mastered at step 7
            outcome(ids[5], 4, 0, 9),  # intractable
        ],
    )
    body = hclient.get("/v1/runs/run1/overview", params={"bins": 5, "top": 2}).json()
    assert [r["problem_id"] for r in body["top_frontier"]] == [ids[0], ids[2]]
    assert body["top_frontier"][0]["weight"] == pytest.approx(0.25)
    assert [r["problem_id"] for r in body["recently_mastered"]] == [ids[4], ids[3]]
    assert body["recently_mastered"][0]["last_step"] == 7
    assert len(body["difficulty"]["histogram"]["counts"]) == 5
    assert body["difficulty"]["zones"] == {
        "unseen": 2,
        "intractable": 1,
        "frontier": 3,
        "mastered": 2,
    }
    assert body["run"]["kernel"] == {"alpha": 1.0, "beta": 1.0}
    assert body["mean_pass_rate"] == pytest.approx((0.5 + 0.1 + 0.3 + 1 + 1 + 0) / 6)


def test_overview_serves_the_kernel_curve_the_dashboard_draws(hclient):
    make_dataset(hclient, n=2)
    make_run(hclient, kernel={"alpha": 2.0, "beta": 0.5})
    curve = hclient.get("/v1/runs/run1/overview", params={"bins": 4}).json()["kernel_curve"]
    assert len(curve["p"]) == len(curve["w"]) == 201
    assert curve["p"][100] == 0.5 and curve["w"][100] == pytest.approx(0.25 * 0.5**0.5)
    assert curve["w"][0] == 0.0 and curve["w"][-1] == 0.0
    centres = [0.125, 0.375, 0.625, 0.875]  # of the 4 bins
    assert curve["at_bins"] == pytest.approx([p**2 * (1 - p) ** 0.5 for p in centres])


def test_history_and_overview_follow_run_token_auth(database_url):
    client, app = make_client(database_url, admin_token=ADMIN)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with client:
        client.post("/v1/datasets", json={"name": "math"}, headers=admin)
        tokens = {
            name: client.post(
                "/v1/runs", json={"name": name, "dataset": "math"}, headers=admin
            ).json()["token"]
            for name in ("mine", "theirs")
        }
        for path in ("/v1/runs/mine/history", "/v1/runs/mine/overview"):
            assert client.get(path).status_code == 401
            own = client.get(path, headers={"Authorization": f"Bearer {tokens['mine']}"})
            assert own.status_code == 200
            other = client.get(path, headers={"Authorization": f"Bearer {tokens['theirs']}"})
            assert other.status_code == 403
    app.state.ctx.engine.dispose()


# ---- a large run ------------------------------------------------------------------------


def build_large_run(app, n: int) -> None:
    """n problems and n/2 problem_stats rows written with bulk inserts (no HTTP)."""
    rng = np.random.default_rng(0)
    with app.state.ctx.engine.begin() as conn:
        dataset_id = conn.execute(insert(Dataset).values(name="big").returning(Dataset.id)).scalar()
        conn.execute(
            insert(Problem),
            [
                {"id": i + 1, "dataset_id": dataset_id, "external_id": f"q{i}", "prompt": "p"}
                for i in range(n)
            ],
        )
        run_id = conn.execute(
            insert(Run)
            .values(
                name="big",
                dataset_id=dataset_id,
                kernel_alpha=1.0,
                kernel_beta=1.0,
                estimator_kind="empirical",
                prior_alpha=1.0,
                prior_beta=1.0,
                version=1,
                max_step=99,
            )
            .returning(Run.id)
        ).scalar()
        seen = n // 2
        successes = rng.integers(0, 9, seen)
        steps = rng.integers(0, 100, seen)
        conn.execute(
            insert(ProblemStats),
            [
                {
                    "run_id": run_id,
                    "problem_id": i + 1,
                    "attempts": 8.0,
                    "successes": float(k),
                    "total_attempts": 8,
                    "total_successes": int(k),
                    "last_step": int(t),
                }
                for i, (k, t) in enumerate(zip(successes, steps, strict=True))
            ],
        )
        conn.execute(update(Run).where(Run.id == run_id).values(version=1))


def test_dashboard_summarises_a_large_run_instead_of_shipping_it(sqlite_database_url):
    """The page's data is a fixed-size summary whatever N is (its speed at N=1e6 is
    measured by bench/dashboard.py, not asserted here)."""
    from tests.conftest import wipe

    wipe(sqlite_database_url)
    client, app = make_client(sqlite_database_url)
    n = 100_000
    with client:
        build_large_run(app, n)
        for path in ("/runs/big", "/v1/runs/big/overview", "/v1/runs/big/history"):
            assert client.get(path).status_code == 200, path
        body = client.get("/v1/runs/big/overview").json()
        assert body["difficulty"]["problems"] == n
        assert sum(body["difficulty"]["zones"].values()) == n
        assert body["difficulty"]["zones"]["unseen"] == n // 2
        assert len(body["top_frontier"]) == 10
        assert len(client.get("/v1/runs/big/overview").content) < 20_000  # summaries only
    app.state.ctx.engine.dispose()
    wipe(sqlite_database_url)
