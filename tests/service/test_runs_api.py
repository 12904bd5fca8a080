import pytest

from tests.service.helpers import make_dataset, make_run, post_outcomes


def test_create_run_with_defaults(client):
    make_dataset(client)
    run = make_run(client)
    assert run["kernel"] == {"alpha": 1.0, "beta": 1.0}
    assert run["estimator"] == {
        "kind": "empirical",
        "prior_alpha": 1.0,
        "prior_beta": 1.0,
        "half_life_steps": None,
        "window": "latest",
    }
    assert run["dataset"] == "math" and run["step"] is None
    fetched = client.get("/v1/runs/run1").json()
    assert {k: v for k, v in fetched.items() if k != "token"} == {
        k: v for k, v in run.items() if k != "token"
    }
    assert [r["name"] for r in client.get("/v1/runs").json()["items"]] == ["run1"]


def test_run_step_is_the_largest_step_seen(client):
    ids = make_dataset(client)
    make_run(client)
    post_outcomes(
        client, "run1", [{"problem_id": ids[0], "attempts": 2, "successes": 1, "step": 7}]
    )
    post_outcomes(
        client, "run1", [{"problem_id": ids[1], "attempts": 2, "successes": 1, "step": 3}]
    )
    assert client.get("/v1/runs/run1").json()["step"] == 7


def test_create_run_custom_settings_are_stored(client):
    make_dataset(client)
    run = make_run(
        client,
        kernel={"alpha": 2.0, "beta": 0.5},
        estimator={
            "kind": "posterior",
            "prior_alpha": 0.5,
            "prior_beta": 2,
            "half_life_steps": 100,
        },
    )
    assert run["kernel"] == {"alpha": 2.0, "beta": 0.5}
    assert run["estimator"]["kind"] == "posterior"
    assert run["estimator"]["half_life_steps"] == 100


def test_unknown_dataset_in_run_body_is_404(client):
    response = client.post("/v1/runs", json={"name": "r", "dataset": "missing"})
    assert response.status_code == 404
    assert "missing" in response.json()["detail"]


def test_creating_a_run_again_gets_it_and_other_settings_are_409_naming_them(client):
    make_dataset(client)
    make_dataset(client, name="other", n=1)
    created = make_run(client)
    again = client.post("/v1/runs", json={"name": "run1", "dataset": "math"})
    assert again.status_code == 200 and again.json() == created
    explicit = {"name": "run1", "dataset": "math", "kernel": {"alpha": 1, "beta": 1}}
    explicit["estimator"] = {"kind": "empirical", "window": "latest"}
    assert client.post("/v1/runs", json=explicit).status_code == 200  # defaults spelled out
    other = {"name": "run1", "dataset": "other", "kernel": {"alpha": 2.0}}
    response = client.post("/v1/runs", json=other)
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert detail == "run 'run1' exists with dataset 'math', not 'other'; kernel.alpha 1.0, not 2.0"
    assert [r["name"] for r in client.get("/v1/runs").json()["items"]] == ["run1"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ('{"name":"r","dataset":"math","kernel":{"alpha":NaN}}', ["body", "kernel", "alpha"]),
        ('{"name":"r","dataset":"math","kernel":{"beta":-1}}', ["body", "kernel", "beta"]),
        ('{"name":"r","dataset":"math","kernel":{"alpha":Infinity}}', ["body", "kernel", "alpha"]),
        ('{"name":"r","dataset":"math","kernel":{"alpha":0}}', ["body", "kernel", "alpha"]),
        (
            '{"name":"r","dataset":"math","estimator":{"prior_alpha":0}}',
            ["body", "estimator", "prior_alpha"],
        ),
        (
            '{"name":"r","dataset":"math","estimator":{"kind":"bayes"}}',
            ["body", "estimator", "kind"],
        ),
        (
            '{"name":"r","dataset":"math","estimator":{"half_life_steps":-5}}',
            ["body", "estimator", "half_life_steps"],
        ),
        ('{"name":"r","dataset":"math","kernel":{"alpha":"1"}}', ["body", "kernel", "alpha"]),
        ('{"name":"R!","dataset":"math"}', ["body", "name"]),
    ],
)
def test_bad_run_settings_are_422_naming_the_field(client, body, loc):
    make_dataset(client)
    response = client.post("/v1/runs", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][: len(loc)] == loc


def test_unknown_run_is_404_everywhere(client):
    make_dataset(client)
    assert client.get("/v1/runs/nope").status_code == 404
    assert (
        client.post(
            "/v1/runs/nope/outcomes",
            json={"outcomes": [{"problem_id": "p0", "attempts": 1, "successes": 0}]},
        ).status_code
        == 404
    )
    assert client.get("/v1/runs/nope/problems/p0").status_code == 404
    assert client.post("/v1/runs/nope/weights", json={}).status_code == 404
    assert client.post("/v1/runs/nope/batches", json={"size": 1}).status_code == 404
    assert client.get("/v1/runs/nope/rollout-queue").status_code == 404
    assert client.get("/v1/runs/nope/difficulty").status_code == 404
