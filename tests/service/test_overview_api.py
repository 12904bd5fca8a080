"""/v1/runs-summary, /v1/compare and /v1/runs/{run}/problem-history, and the prompts in the
run overview (both databases)."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from service.app import create_app
from service.domain.overview import largest_differences
from service.domain.previews import PROMPT_PREVIEW_CHARS
from service.settings import Settings
from service.store import datasets as dataset_store
from service.store import overview as overview_store
from service.store import runs as run_store
from tests.service.helpers import make_dataset, make_run, post_outcomes


@pytest.fixture
def oclient(database_url):
    """A client whose service snapshots history on every ingest."""
    app = create_app(
        Settings(database_url=database_url, sync_interval_s=0.0, history_min_interval_s=0.0)
    )
    with TestClient(app) as client:
        yield client
    app.state.ctx.engine.dispose()


def outcome(pid: str, n: int, k: int, step: int | None = None) -> dict:
    return {"problem_id": pid, "attempts": n, "successes": k, "step": step}


def ok(response):
    assert response.status_code == 200, response.text
    return response.json()


def query_error(response, field: str) -> str:
    """The message of a 422 located at the query parameter ``field``."""
    assert response.status_code == 422, response.text
    (error,) = [e for e in response.json()["detail"] if e["loc"] == ["query", field]]
    return error["msg"]


# ---- runs summary -----------------------------------------------------------------------


def test_summary_gives_each_run_its_newest_snapshot(oclient):
    ids = make_dataset(oclient, n=6)
    make_run(oclient, "a")
    make_run(oclient, "b")
    post_outcomes(oclient, "a", [outcome(ids[0], 4, 2, 0), outcome(ids[1], 4, 4, 0)])
    post_outcomes(oclient, "a", [outcome(ids[2], 4, 0, 3)])
    items = ok(oclient.get("/v1/runs-summary"))["items"]
    assert [item["run"]["name"] for item in items] == ["a", "b"]
    latest = items[0]["latest"]
    assert latest["step"] == 3
    assert latest["zones"] == {"unseen": 3, "intractable": 1, "frontier": 1, "mastered": 1}
    history = ok(oclient.get("/v1/runs/a/history"))["items"]
    assert latest == history[-1]  # the same point the run's own history ends with
    assert items[0]["run"] == ok(oclient.get("/v1/runs/a"))
    assert items[1]["latest"] is None  # no outcomes yet


def test_summary_filters_by_dataset_and_name_glob(oclient):
    make_dataset(oclient, "math", n=2)
    make_dataset(oclient, "code", n=2, prefix="c")
    for name, dataset in [
        ("paced-s0", "math"),
        ("paced-s1", "math"),
        ("paced-s0-code", "code"),
        ("uniform-s0", "math"),
        ("a_b", "math"),
        ("axb", "math"),
    ]:
        make_run(oclient, name, dataset)

    def names(**params) -> list[str]:
        items = ok(oclient.get("/v1/runs-summary", params=params))["items"]
        return [item["run"]["name"] for item in items]

    assert names(name="paced-s*") == ["paced-s0", "paced-s0-code", "paced-s1"]
    assert names(name="paced-s*", dataset="math") == ["paced-s0", "paced-s1"]
    assert names(dataset="code") == ["paced-s0-code"]
    assert names(name="*-s0") == ["paced-s0", "uniform-s0"]
    assert names(name="a_b") == ["a_b"]  # `_` is a name character, not a LIKE wildcard
    assert names(name="uniform-s0") == ["uniform-s0"]  # no `*`: the exact name
    assert names(dataset="nope") == []
    assert (
        "string should match pattern"
        in query_error(oclient.get("/v1/runs-summary", params={"name": "Paced%"}), "name").lower()
    )
    query_error(oclient.get("/v1/runs-summary", params={"dataset": "BAD NAME"}), "dataset")


def test_summary_is_one_query_whatever_the_number_of_runs(oclient):
    ids = make_dataset(oclient, n=4)
    statements: list[str] = []
    engine = oclient.app.state.ctx.engine

    def count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    def selects_for(n_runs: int) -> int:
        while len(ok(oclient.get("/v1/runs-summary"))["items"]) < n_runs:
            name = f"r{len(ok(oclient.get('/v1/runs-summary'))['items']):03d}"
            make_run(oclient, name)
            post_outcomes(oclient, name, [outcome(ids[0], 4, 2, 1)])
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            items = ok(oclient.get("/v1/runs-summary"))["items"]
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert len(items) == n_runs and all(item["latest"] for item in items)
        return len(statements)

    assert selects_for(2) == selects_for(25) == 1


# ---- compare ----------------------------------------------------------------------------


def two_runs_that_disagree(client) -> list[str]:
    """Runs a and b on `math`: b solves p0 and p1 more often, equals a on p2; p3 only in a."""
    ids = make_dataset(client, n=6)
    for name in ("a", "b", "c"):
        make_run(client, name)
    post_outcomes(
        client,
        "a",
        [outcome(ids[0], 8, 0, 0), outcome(ids[1], 8, 4, 0), outcome(ids[2], 8, 4, 0)],
    )
    post_outcomes(client, "a", [outcome(ids[3], 8, 8, 1)])
    post_outcomes(
        client,
        "b",
        [outcome(ids[0], 8, 8, 0), outcome(ids[1], 8, 6, 0), outcome(ids[2], 8, 4, 0)],
    )
    return ids


def test_compare_puts_runs_side_by_side(oclient):
    ids = two_runs_that_disagree(oclient)
    body = ok(oclient.get("/v1/compare", params={"runs": "b,a,c", "bins": 4, "top": 5}))
    assert body["dataset"] == "math"
    assert [r["run"]["name"] for r in body["runs"]] == ["b", "a", "c"]  # as asked
    for item in body["runs"]:
        name = item["run"]["name"]
        assert item["history"] == ok(oclient.get(f"/v1/runs/{name}/history"))["items"]
        assert item["difficulty"] == ok(
            oclient.get(f"/v1/runs/{name}/difficulty", params={"bins": 4})
        )
    assert [p["step"] for p in body["runs"][1]["history"]] == [0, 1]
    assert body["runs"][2]["history"] == [] and body["runs"][2]["mean_pass_rate"] is None
    assert body["pair"] == ["b", "a"]  # the first two unless a pair is named
    rows = body["differences"]
    assert [r["problem_id"] for r in rows] == [ids[0], ids[1]]  # p2 equal, p3 only in a
    assert rows[0]["pass_rates"] == [1.0, 0.0] and rows[0]["difference"] == 1.0
    assert rows[1]["pass_rates"] == [0.75, 0.5] and rows[1]["attempts"] == [8.0, 8.0]
    assert rows[0]["prompt"] == f"prompt {ids[0]}" and rows[0]["answer"] == "0"

    flipped = ok(oclient.get("/v1/compare", params={"runs": "b,a,c", "pair": "a,b", "top": 1}))
    assert flipped["pair"] == ["a", "b"]
    assert [(r["problem_id"], r["difference"]) for r in flipped["differences"]] == [(ids[0], -1.0)]
    assert ok(oclient.get("/v1/compare", params={"runs": "a,c"}))["differences"] == []


def test_compare_refuses_runs_of_different_datasets_naming_the_field(oclient):
    make_dataset(oclient, "math", n=2)
    make_dataset(oclient, "code", n=2, prefix="c")
    make_run(oclient, "a", "math")
    make_run(oclient, "b", "math")
    make_run(oclient, "z", "code")
    msg = query_error(oclient.get("/v1/compare", params={"runs": "a,b,z"}), "runs")
    assert msg == (
        "runs are on different datasets (a: math, b: math, z: code); compare runs of one dataset"
    )


@pytest.mark.parametrize(
    ("params", "field", "expected"),
    [
        ({"runs": "a"}, "runs", "name 2 to 8 runs, comma-separated"),
        ({"runs": ",,"}, "runs", "name 2 to 8 runs, comma-separated"),
        ({"runs": "a,a"}, "runs", "each run may be named only once"),
        ({"runs": ",".join("abcdefghi")}, "runs", "name 2 to 8 runs, comma-separated"),
        ({"runs": "a,b", "pair": "a"}, "pair", "name 2 to 2 runs, comma-separated"),
        ({"runs": "a,b", "pair": "a,a"}, "pair", "each run may be named only once"),
        ({"runs": "a,b", "pair": "a,c"}, "pair", "both runs of the pair must be among"),
    ],
)
def test_compare_answers_bad_queries_with_422_on_the_field(oclient, params, field, expected):
    make_dataset(oclient, n=2)
    for name in "abc":
        make_run(oclient, name)
    assert query_error(oclient.get("/v1/compare", params=params), field).startswith(expected)


def test_compare_of_an_unknown_run_is_404_naming_it(oclient):
    make_dataset(oclient, n=2)
    make_run(oclient, "a")
    response = oclient.get("/v1/compare", params={"runs": "a,ghost,ghoul"})
    assert response.status_code == 404
    assert response.json()["detail"] == "runs not found: 'ghost', 'ghoul'"
    assert query_error(oclient.get("/v1/compare"), "runs")  # missing: FastAPI's 422


def arrays(ids, attempts, successes) -> dict[str, np.ndarray]:
    return {
        "ids": np.asarray(ids, dtype=np.int64),
        "attempts": np.asarray(attempts, dtype=np.float64),
        "successes": np.asarray(successes, dtype=np.float64),
    }


def test_largest_differences_match_problems_by_id_when_the_indexes_differ():
    # b has not learnt problem 4 yet and has an extra problem 9; 2 is unseen in b.
    a = arrays([1, 2, 3, 4, 5], [8, 8, 8, 8, 8], [8, 4, 2, 0, 4])
    b = arrays([1, 2, 3, 5, 9], [8, 0, 8, 8, 8], [0, 0, 4, 6, 8])
    rows = largest_differences(a, b, top=10)
    assert [(r.id, r.difference) for r in rows] == [(1, 1.0), (3, -0.25), (5, -0.25)]
    assert [r.id for r in largest_differences(a, b, top=2)] == [1, 3]  # ties by id
    assert largest_differences(a, b, top=0) == []


# ---- one problem ------------------------------------------------------------------------


def test_problem_history_sums_outcomes_per_step(oclient):
    ids = make_dataset(oclient, n=3)
    make_run(oclient, "a")
    post_outcomes(oclient, "a", [outcome(ids[0], 8, 1, 0), outcome(ids[1], 8, 8, 0)])
    post_outcomes(oclient, "a", [outcome(ids[0], 4, 2, 2), outcome(ids[0], 4, 4, 2)])
    post_outcomes(oclient, "a", [outcome(ids[0], 2, 0)])  # no step
    body = ok(oclient.get(f"/v1/runs/a/problem-history/{ids[0]}"))
    assert body["problem"] == {"id": ids[0], "prompt": "prompt p0", "answer": "0", "metadata": None}
    assert body["stats"] == ok(oclient.get(f"/v1/runs/a/problems/{ids[0]}"))
    steps = [(s["step"], s["attempts"], s["successes"], s["outcomes"]) for s in body["steps"]]
    assert steps == [(None, 2, 0, 1), (0, 8, 1, 1), (2, 8, 6, 2)]
    assert body["steps"][2]["pass_rate"] == 0.75
    assert body["complete"] is True
    assert ok(oclient.get(f"/v1/runs/a/problem-history/{ids[2]}"))["steps"] == []
    missing = oclient.get("/v1/runs/a/problem-history/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]
    assert oclient.get(f"/v1/runs/ghost/problem-history/{ids[0]}").status_code == 404


def test_problem_history_takes_ids_with_slashes(oclient):
    oclient.post("/v1/datasets", json={"name": "math"})
    problems = [{"id": "gsm8k/train/7", "prompt": "How many?"}]
    ok(oclient.post("/v1/datasets/math/problems", json={"problems": problems}))
    make_run(oclient, "a")
    post_outcomes(oclient, "a", [outcome("gsm8k/train/7", 4, 1, 5)])
    body = ok(oclient.get("/v1/runs/a/problem-history/gsm8k/train/7"))
    assert body["problem"]["id"] == "gsm8k/train/7" and body["steps"][0]["step"] == 5
    assert oclient.get("/runs/a/problems/gsm8k/train/7").status_code == 200  # the page


def test_problem_history_scan_is_bounded_and_says_so(oclient):
    ids = make_dataset(oclient, n=3)
    make_run(oclient, "a")
    for step in range(6):
        post_outcomes(oclient, "a", [outcome(ids[0], 4, step % 5, step), outcome(ids[1], 4, 1)])
    with oclient.app.state.ctx.session_factory() as session:
        run = run_store.get_by_name(session, "a")
        problem_id = dataset_store.ids_for_external(session, run.dataset_id, [ids[0]])[ids[0]]
        run_id = run.id
        # 6 requests of 2 outcomes, read 2 rows a page: stop once 4 outcomes are scanned.
        found, complete = overview_store.outcomes_of_problem(
            session, run_id, problem_id, max_outcomes=4, page=2
        )
        assert not complete
        assert found["steps"].tolist() == [5, 4]  # the newest requests first
        found, complete = overview_store.outcomes_of_problem(
            session, run_id, problem_id, max_outcomes=100, page=2
        )
        assert complete and found["steps"].tolist() == [5, 4, 3, 2, 1, 0]
        assert found["successes"].tolist() == [0, 4, 3, 2, 1, 0]


# ---- prompts in the run overview --------------------------------------------------------


def test_overview_tables_carry_prompt_previews_and_answers(oclient):
    oclient.post("/v1/datasets", json={"name": "math"})
    long_prompt = "x" * (PROMPT_PREVIEW_CHARS + 500)
    problems = [
        {"id": "short", "prompt": "What is 2 + 2?", "answer": "4"},
        {"id": "long", "prompt": long_prompt},
    ]
    ok(oclient.post("/v1/datasets/math/problems", json={"problems": problems}))
    make_run(oclient, "a")
    post_outcomes(oclient, "a", [outcome("short", 8, 4, 0), outcome("long", 8, 8, 0)])
    body = ok(oclient.get("/v1/runs/a/overview"))
    (frontier,) = body["top_frontier"]
    assert (frontier["prompt"], frontier["answer"], frontier["prompt_truncated"]) == (
        "What is 2 + 2?",
        "4",
        False,
    )
    (mastered,) = body["recently_mastered"]
    assert mastered["prompt"] == long_prompt[:PROMPT_PREVIEW_CHARS]
    assert mastered["prompt_truncated"] is True and mastered["answer"] is None
    full = ok(oclient.get("/v1/runs/a/problem-history/long"))["problem"]["prompt"]
    assert full == long_prompt
