"""Small contract rules a user meets first: bodies that are not JSON, readable histogram edges."""

from __future__ import annotations

import pytest

from tests.service.helpers import make_dataset, make_run, post_outcomes


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        ("name=a", {"content-type": "application/x-www-form-urlencoded"}),  # curl -d
        ('{"name": "a"}', {"content-type": "text/plain"}),
        ('{"name": ', {"content-type": "application/json"}),  # not JSON at all
    ],
)
def test_a_body_that_is_not_json_is_415_naming_application_json(client, content, headers):
    response = client.post("/v1/datasets", content=content, headers=headers)
    assert response.status_code == 415
    assert "application/json" in response.json()["detail"]
    assert client.get("/v1/datasets").json()["items"] == []


def test_json_without_a_content_type_is_taken(client):
    response = client.post("/v1/datasets", content='{"name": "a"}', headers={"content-type": ""})
    assert response.status_code == 201


def test_a_json_body_that_breaks_the_schema_stays_a_422(client):
    response = client.post("/v1/datasets", json={"name": 7})
    assert response.status_code == 422


def test_histogram_edges_are_what_a_person_reads(client):
    ids = make_dataset(client, n=4)
    make_run(client)
    post_outcomes(client, "run1", [{"problem_id": i, "attempts": 8, "successes": 3} for i in ids])
    edges = client.get("/v1/runs/run1/difficulty?bins=10").json()["histogram"]["edges"]
    assert edges == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    thirds = client.get("/v1/runs/run1/difficulty?bins=3").json()["histogram"]["edges"]
    assert all(len(repr(edge)) <= 6 for edge in thirds), thirds  # 0.3333, not 0.333333...
