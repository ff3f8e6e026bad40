"""The app as a whole: open and protected routes, the error model, probes, metrics, the
OpenAPI schema, rate limits."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.serving.api.conftest import MakeApi, assert_problem, login, register, session

OPEN = {"/v1/health", "/v1/ready", "/v1/auth/register", "/v1/auth/login"}
# Open to no session but authenticated otherwise: the payment provider's callback is signed
# with a shared secret (HMAC of its body), and answers 401 ``invalid_signature`` without it.
SIGNED = {"/v1/payments/callback"}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


def test_every_route_when_no_session_then_401_but_the_open_ones(api: TestClient) -> None:
    # The schema lists every route of the app (none is hidden from it under /v1).
    paths = api.get("/openapi.json").json()["paths"]
    assert set(paths) >= OPEN | {"/v1/auth/me", "/v1/auth/sessions/{session_id}"}
    for path, operations in paths.items():
        assert path.startswith("/v1/")
        for method in operations:
            res = api.request(method.upper(), _concrete(path))
            if path in OPEN:
                assert res.status_code != 401, (method, path)
            elif path in SIGNED:
                assert_problem(res, 401, "invalid_signature")
            else:
                body = assert_problem(res, 401, "unauthenticated")
                assert res.headers["WWW-Authenticate"].startswith("Bearer"), path
                assert body["instance"] == _concrete(path)


def test_openapi_when_fetched_then_lists_the_routes_and_the_bearer_scheme(api: TestClient) -> None:
    schema = api.get("/openapi.json").json()
    assert schema["info"]["title"] == "Bourse API"
    assert {"/v1/auth/login", "/v1/auth/register", "/v1/health"} <= set(schema["paths"])
    assert "HTTPBearer" in schema["components"]["securitySchemes"]


def test_errors_when_validation_or_unknown_path_then_problem_json(api: TestClient) -> None:
    res = api.post("/v1/auth/login", json={"username": "a", "password": "b"})
    body = assert_problem(res, 422, "invalid_input")
    assert body["field"] == "device_id" and body["type"].endswith("/invalid_input")
    assert body["instance"] == "/v1/auth/login"
    assert_problem(api.get("/v1/nowhere"), 404, "not_found")
    assert_problem(api.put("/v1/auth/login"), 405, "method_not_allowed")


def test_probes_when_up_then_health_and_ready_answer_200(api: TestClient) -> None:
    assert api.get("/v1/health").json() == {"status": "ok"}
    assert api.get("/v1/ready").json() == {"status": "ready"}


def test_ready_when_redis_is_unreachable_then_503_naming_it(make_api: MakeApi) -> None:
    api = make_api()
    api.app.state.api.redis.connection_pool.connection_kwargs["port"] = 1  # type: ignore[attr-defined]
    api.app.state.api.redis.connection_pool.disconnect()  # type: ignore[attr-defined]
    body = assert_problem(api.get("/v1/ready"), 503, "unavailable")
    assert body["down"] == ["redis"]
    assert api.get("/v1/health").status_code == 200


def test_metrics_when_requests_were_served_then_counted_by_route_template(api: TestClient) -> None:
    register(api)
    headers = session(api)
    api.delete("/v1/auth/sessions/abc", headers=headers)
    text = api.get("/metrics").text
    assert 'route="/v1/auth/sessions/{session_id}",status="404"' in text
    assert re.search(r'bourse_api_requests_total\{method="POST",route="/v1/auth/login",'
                     r'status="200"\} 1\.0', text)  # fmt: skip
    assert "bourse_api_request_duration_seconds_bucket" in text
    assert "/v1/auth/sessions/abc" not in text


def test_rate_limit_when_a_user_passes_it_then_429_with_retry_after(make_api: MakeApi) -> None:
    api = make_api(api_rate_per_user=3, api_rate_window_s=60)
    register(api)
    headers = session(api)
    codes = [api.get("/v1/auth/me", headers=headers).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    res = api.get("/v1/auth/me", headers=headers)
    assert_problem(res, 429, "rate_limited")
    assert 1 <= int(res.headers["Retry-After"]) <= 60
    other = session(api)  # another session of the same user shares the user's limit
    assert api.get("/v1/auth/me", headers=other).status_code == 429


def test_rate_limit_when_logins_from_one_ip_pass_it_then_429_for_that_ip_only(
    make_api: MakeApi,
) -> None:
    api = make_api(api_rate_login_per_ip=3, api_ip_header="X-Forwarded-For")
    here = {"X-Forwarded-For": "203.0.113.7, 10.0.0.1"}
    codes = [
        api.post("/v1/auth/login", headers=here,
                 json={"username": "x", "password": "y", "device_id": "d"}).status_code
        for _ in range(4)
    ]  # fmt: skip
    assert codes == [401, 401, 401, 429]
    assert "Retry-After" in api.post("/v1/auth/login", headers=here, json={
        "username": "x", "password": "y", "device_id": "d"}).headers  # fmt: skip
    elsewhere = login(api, "x", "y")  # no header: the peer's address, another bucket
    assert elsewhere.status_code == 401


def test_rate_limit_when_one_ip_passes_it_then_every_route_429_but_health(
    make_api: MakeApi,
) -> None:
    api = make_api(api_rate_per_ip=2)
    assert [api.get("/v1/auth/me").status_code for _ in range(3)] == [401, 401, 429]
    assert_problem(api.post("/v1/auth/login", json={}), 429, "rate_limited")
    assert api.get("/v1/health").status_code == 200
