"""Small builders for API tests."""

from __future__ import annotations


def make_dataset(client, name: str = "math", n: int = 10, prefix: str = "p") -> list[str]:
    assert client.post("/v1/datasets", json={"name": name}).status_code == 201
    ids = [f"{prefix}{i}" for i in range(n)]
    problems = [
        {"id": pid, "prompt": f"prompt {pid}", "answer": str(i)} for i, pid in enumerate(ids)
    ]
    response = client.post(f"/v1/datasets/{name}/problems", json={"problems": problems})
    assert response.status_code == 200, response.text
    return ids


def make_run(client, name: str = "run1", dataset: str = "math", **spec) -> dict:
    response = client.post("/v1/runs", json={"name": name, "dataset": dataset, **spec})
    assert response.status_code == 201, response.text
    return response.json()


def post_outcomes(client, run: str, outcomes: list[dict], key: str | None = None):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(f"/v1/runs/{run}/outcomes", json={"outcomes": outcomes}, headers=headers)


def stats(client, run: str, problem_id: str) -> dict:
    response = client.get(f"/v1/runs/{run}/problems/{problem_id}")
    assert response.status_code == 200, response.text
    return response.json()
