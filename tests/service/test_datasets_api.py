from tests.service.helpers import make_dataset


def test_create_get_list_dataset(client):
    created = client.post("/v1/datasets", json={"name": "gsm8k", "description": "grade school"})
    assert created.status_code == 201
    body = created.json()
    assert body["name"] == "gsm8k" and body["description"] == "grade school"
    assert body["problem_count"] == 0 and body["created_at"].endswith("Z")
    assert client.get("/v1/datasets/gsm8k").json() == body
    assert [d["name"] for d in client.get("/v1/datasets").json()["items"]] == ["gsm8k"]


def test_creating_a_dataset_again_gets_it_and_other_settings_are_409(client):
    created = client.post("/v1/datasets", json={"name": "a", "description": "x"})
    assert created.status_code == 201
    make_dataset(client, name="b", n=3)
    again = client.post("/v1/datasets", json={"name": "a", "description": "x"})
    assert again.status_code == 200 and again.json() == created.json()
    assert client.post("/v1/datasets", json={"name": "b"}).json()["problem_count"] == 3
    other = client.post("/v1/datasets", json={"name": "a", "description": "y"})
    assert other.status_code == 409
    assert other.json()["detail"] == "dataset 'a' exists with description 'x', not 'y'"
    assert [d["name"] for d in client.get("/v1/datasets").json()["items"]] == ["a", "b"]


def test_names_people_type_are_taken_and_bad_ones_are_422_stating_the_rule(client):
    for name in ["Qwen2.5-7B-distill", "Upper", "x" * 128, "a_b.c-9"]:
        response = client.post("/v1/datasets", json={"name": name})
        assert response.status_code == 201, name
        assert client.get(f"/v1/datasets/{name}").json()["name"] == name
    for name in ["", "-lead", ".dot", "x" * 129, "sp ace", "a/b", "é"]:
        response = client.post("/v1/datasets", json={"name": name})
        assert response.status_code == 422, name
        error = response.json()["detail"][0]
        assert error["loc"] == ["body", "name"]
        assert "letters, digits, '.', '_' or '-'" in error["msg"], name
    response = client.post("/v1/datasets", json={"name": 7})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "name"]


def test_unknown_dataset_is_404(client):
    assert client.get("/v1/datasets/nope").status_code == 404
    assert client.post("/v1/datasets/nope/problems", json={"problems": []}).status_code == 404
    assert client.get("/v1/datasets/nope/problems/x").status_code == 404


def test_upsert_problems_counts_inserted_and_updated(client):
    make_dataset(client, n=3)
    response = client.post(
        "/v1/datasets/math/problems",
        json={
            "problems": [
                {"id": "p0", "prompt": "new prompt", "answer": None, "metadata": {"level": 2}},
                {"id": "q1", "prompt": "fresh", "answer": "7"},
            ]
        },
    )
    assert response.json() == {"inserted": 1, "updated": 1}
    assert client.get("/v1/datasets/math").json()["problem_count"] == 4
    problem = client.get("/v1/datasets/math/problems/p0").json()
    assert problem == {"id": "p0", "prompt": "new prompt", "answer": None, "metadata": {"level": 2}}
    assert client.get("/v1/datasets/math/problems/missing").status_code == 404


def test_an_id_repeated_in_one_upload_is_422_listing_it_and_nothing_is_applied(client):
    make_dataset(client, n=0)
    problems = [{"id": "a", "prompt": "first"}, {"id": "b", "prompt": "b"}]
    problems.append({"id": "a", "prompt": "second"})
    response = client.post("/v1/datasets/math/problems", json={"problems": problems})
    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["loc"] == ["body", "problems"] and error["items"] == ["a"]
    assert "more than once" in error["msg"]
    assert client.get("/v1/datasets/math").json()["problem_count"] == 0


def test_problem_ids_with_slashes_round_trip(client):
    make_dataset(client, n=0)
    client.post(
        "/v1/datasets/math/problems", json={"problems": [{"id": "aime/2024/3", "prompt": "x"}]}
    )
    assert client.get("/v1/datasets/math/problems/aime/2024/3").json()["id"] == "aime/2024/3"


def test_too_many_problems_is_422(client):
    make_dataset(client, n=0)
    problems = [{"id": str(i), "prompt": "x"} for i in range(10_001)]
    response = client.post("/v1/datasets/math/problems", json={"problems": problems})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:2] == ["body", "problems"]


def test_wrong_types_in_problems_are_422(client):
    make_dataset(client, n=0)
    for bad in [{"id": 5, "prompt": "x"}, {"id": "a"}, {"id": "a", "prompt": "x", "metadata": [1]}]:
        response = client.post("/v1/datasets/math/problems", json={"problems": [bad]})
        assert response.status_code == 422, bad
        assert response.json()["detail"][0]["loc"][:3] == ["body", "problems", 0]
