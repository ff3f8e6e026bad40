"""Schemathesis against the app's own OpenAPI schema: every operation, a bounded number of
generated cases (valid and invalid), as a client with a verified session and as an admin
with 2FA, in process against a real OMS host, Redis and the store. No case may get a server
error; a valid case's answer must conform to the schema (status, content type, body)."""

from __future__ import annotations

import os
from typing import Any

import hypothesis
import hypothesis.errors
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.serving.api.conftest import MakeApi, enrol
from tests.serving.api.office import funded_client, staff, withdrawal
from tests.trading.bus.test_host import Served

# Cases per operation, mode and caller: about 30 operations × 2 × 2 × 4 ≈ 500 cases. A
# deeper hunt: BOURSE_SCHEMATHESIS_EXAMPLES=100.
EXAMPLES = int(os.environ.get("BOURSE_SCHEMATHESIS_EXAMPLES", "4"))
# Would end the session the run uses: tested on its own in test_auth.py.
SKIP = {("POST", "/v1/auth/logout")}
VALID_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
                response_schema_conformance]  # fmt: skip


def _send(api: TestClient, case: Any, headers: dict[str, str]) -> Any:
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
    request = {k: kwargs[k] for k in ("method", "url", "headers", "params")
               if kwargs.get(k) is not None}  # fmt: skip
    # The run's own session, whatever the case generated for the security scheme.
    generated = {k: v for k, v in (request.get("headers") or {}).items()
                 if k.lower() != "authorization"}  # fmt: skip
    request["headers"] = {**generated, **headers}
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    elif kwargs.get("data") is not None:
        request["content"] = kwargs["data"]
    return api.request(**request)


def _fuzz(api: TestClient, strategy: Any, headers: dict[str, str], checks: list[Any],
          cases: list[int]) -> bool:  # fmt: skip
    """Runs the cases; False when the strategy makes none (an operation without parameters
    has no invalid case)."""

    @hypothesis.settings(
        max_examples=EXAMPLES, deadline=None, database=None,
        phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @hypothesis.given(case=strategy)
    def run(case: Any) -> None:
        res = _send(api, case, headers)
        cases[0] += 1
        case.validate_response(schemathesis.Response.from_any(res), checks=checks)

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        return False
    return True


def test_schema_when_fuzzed_as_a_client_and_as_staff_then_no_server_error(
    make_api: MakeApi, served: Served
) -> None:
    api = make_api(api_rate_per_user=100_000, api_rate_per_ip=100_000,
                   api_rate_login_per_ip=100_000)  # fmt: skip
    alice = funded_client(api, served)
    enrol(api, alice.headers)
    withdrawal(served, alice)
    callers = {"client": alice.headers, "admin": staff(api, served, "ada", "admin")}
    schema = schemathesis.openapi.from_dict(api.get("/openapi.json").json())
    sent: dict[str, int] = {}
    failures: list[str] = []
    cases = [0]
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            checks = VALID_CHECKS if mode is GenerationMode.POSITIVE else [not_a_server_error]
            for name, headers in callers.items():
                strategy = operation.as_strategy(generation_mode=mode)
                try:
                    sent[name] = sent.get(name, 0) + _fuzz(api, strategy, headers, checks, cases)
                except Exception as exc:  # every operation's failures, not the first's alone
                    failures.append(f"{name} {mode.value} {operation.method} {operation.path}: "
                                    f"{exc}")  # fmt: skip
    assert not failures, "\n\n".join(failures)
    print(f"{cases[0]} cases sent")
    assert cases[0] >= 100
    assert sent["client"] == sent["admin"] >= 2 * 25
    # The run's sessions are still live: nothing generated logged them out.
    assert api.get("/v1/auth/me", headers=alice.headers).status_code == 200


def test_schema_when_fetched_then_every_back_office_action_requires_a_reason(
    make_api: MakeApi, served: Served
) -> None:
    api = make_api()
    schema = api.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            if not path.startswith("/v1/back-office/") or method == "get":
                continue
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            body = components[ref.rsplit("/", 1)[1]]
            assert "reason" in body["required"], (method, path)
