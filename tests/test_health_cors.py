def test_health_needs_no_key(client):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert isinstance(body["timestamp"], int) and body["timestamp"] > 1_600_000_000_000


def test_cors_headers_on_every_answer(client, api):
    for response in (client.get("/health"), api.get("/api/sessions"), client.get("/nowhere")):
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "DELETE" in response.headers["Access-Control-Allow-Methods"]
        assert "Authorization" in response.headers["Access-Control-Allow-Headers"]


def test_options_on_any_path_is_204(client):
    for path in ("/sync/session", "/api/sessions", "/no/such/path"):
        response = client.options(path)
        assert response.status_code == 204
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "Content-Type" in response.headers["Access-Control-Allow-Headers"]


def test_unknown_route_is_json_404(client):
    response = client.get("/no/such/route")
    assert response.status_code == 404
    assert "error" in response.get_json()


def test_wrong_method_is_json_405(api):
    response = api.get("/sync/session")
    assert response.status_code == 405
    assert "error" in response.get_json()
    assert "POST" in response.headers["Allow"]
