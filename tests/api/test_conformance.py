"""Conformance against OpenWhisk's published API description (apiv1swagger.json), with schemathesis generating
requests for the live server. Invoke, fire and web routes are excluded (they are the activation service's).

Two bounded runs (a few hundred requests in all):
* documented: generated bodies and flags as the description allows, addressed at the caller's own namespace with
  valid names and ids; every answer must be a status the description documents for that operation, or one the
  route table (docs/openwhisk.md §1.5) lists for it where the description is silent (e.g. 404 for a missing package on
  PUT); its body must be what the description's schema for that status says (as a client generated from it reads
  it), typed as OpenWhisk types it, with the transaction id and CORS headers every REST answer carries.
* raw: any generated input (random namespaces, names, ids, query values); nothing may answer 5xx, and every answer
  carries the transaction id and CORS headers, an error being `{"error", "code"}` JSON.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.transport import Response

from tests.api.support import GUEST_AUTH, basic

SWAGGER = Path(__file__).resolve().parents[2] / "whisk" / "api" / "apiv1swagger.json"
SCHEMA = schemathesis.openapi.from_path(SWAGGER)
EXCLUDED = {("POST", "/namespaces/{namespace}/actions/{actionName}"),
            ("POST", "/namespaces/{namespace}/actions/{packageName}/{actionName}"),
            ("POST", "/namespaces/{namespace}/triggers/{triggerName}")}
# Statuses the route table (docs/openwhisk.md §1.5) gives a route beyond what the swagger lists.
SPEC_EXTRA = {
    ("GET", "/namespaces/{namespace}/actions"): {400},
    ("GET", "/namespaces/{namespace}/triggers"): {400},
    ("GET", "/namespaces/{namespace}/rules"): {400},
    ("GET", "/namespaces/{namespace}/packages"): {400},
    ("GET", "/namespaces/{namespace}/activations"): {400},
    ("GET", "/namespaces/{namespace}/actions/{actionName}"): {400},
    ("GET", "/namespaces/{namespace}/actions/{packageName}/{actionName}"): {400},
    ("PUT", "/namespaces/{namespace}/actions/{packageName}/{actionName}"): {404},
    ("PUT", "/namespaces/{namespace}/rules/{ruleName}"): {403},
    ("DELETE", "/namespaces/{namespace}/rules/{ruleName}"): {409},
    ("DELETE", "/namespaces/{namespace}/triggers/{triggerName}"): {409},
    ("GET", "/namespaces/{namespace}/triggers/{triggerName}"): {409},
    ("GET", "/namespaces/{namespace}/rules/{ruleName}"): {409},
    ("POST", "/namespaces/{namespace}/rules/{ruleName}"): {409},
}
# Each collection's names get their own prefix, so generated names never collide across collections (a 409
# "exists but is not in this collection" is right then, but not what this run is about).
PREFIX = {"actionName": "a", "triggerName": "t", "ruleName": "r", "packageName": "p"}
DOCUMENTED_EXAMPLES = 8
RAW_EXAMPLES = 6


def operations() -> list[Any]:
    ops = [result.ok() for result in SCHEMA.get_all_operations()]
    return [op for op in ops if (op.method.upper(), op.path) not in EXCLUDED and not op.path.startswith("/web/")]


def _name(prefix: str, value: Any) -> str:
    return prefix + (re.sub(r"[^\w@.&-]", "", str(value), flags=re.ASCII)[:40] or "x")


def _int(value: Any, low: int, high: int, default: int) -> str:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return str(default)
    return str(low + abs(number) % (high - low + 1))


def within_documentation(case: Any) -> None:
    """Keep a generated case where the description's statuses apply: own namespace, valid names and values."""
    params = case.path_parameters or {}
    for key, value in list(params.items()):
        if key == "namespace":
            params[key] = "_"
        elif key in PREFIX:
            params[key] = _name(PREFIX[key], value)
        elif key == "activationid":
            params[key] = hashlib.md5(str(value).encode()).hexdigest()
    query = case.query or {}
    for key, value in list(query.items()):
        if key == "limit":
            query[key] = _int(value, 0, 200, 30)
        elif key == "skip":
            query[key] = _int(value, 0, 10_000, 0)
        elif key in ("since", "upto"):
            query[key] = _int(value, 0, 2 ** 50, 0)
        elif key in ("force", "overwrite", "code", "docs", "public", "count"):
            query[key] = "true" if str(value).lower() in ("true", "1") else "false"
        elif key == "name":
            query[key] = _name("a", value)


def first_values(response: Any) -> dict[str, str]:
    """A schemathesis response's headers, by lower-case name."""
    return {name.lower(): values[0] for name, values in response.headers.items()}


def conforms(operation: Any, case: Any, response: Any) -> None:
    """The answer as a client generated from the description, or a page of another origin, reads it: the schema of
    its status, `application/json` without parameters (docs/openwhisk.md §1.1), X-Request-ID and CORS."""
    what = f"{case.method} {case.formatted_path} query={case.query} -> {response.status_code} {response.text[:300]}"
    headers = first_values(response)
    assert headers.get("x-request-id") and headers.get("access-control-allow-origin") == "*", what
    if response.status_code == 200 and response.text == "OK":         # a rule's state changed (§1.8)
        assert headers["content-type"].startswith("text/plain"), what
        return
    assert headers["content-type"] == "application/json", what
    body = response.json()
    if response.status_code == 200 and str((case.query or {}).get("count")) == "true":
        # `count=true` answers {"<collection>": N} (§1.4), which the description does not say.
        assert isinstance(body, dict) and len(body) == 1 and isinstance(next(iter(body.values())), int), what
        return
    if isinstance(body, list) and operation.path.endswith("/activations"):
        # A summary's statusCode is 0 to 3 (3: a whisk error, E/ActivationResponse.scala); the description's enum
        # stops at 2.
        summaries = [record | {"statusCode": min(record["statusCode"], 2)}
                     if isinstance(record.get("statusCode"), int) else record for record in body]
        response = Response(response.status_code, response.headers, json.dumps(summaries).encode(), response.request,
                            response.elapsed, response.verify)
    try:
        operation.validate_response(response, case=case)
    except Exception as failure:
        raise AssertionError(f"{what}\n{failure}") from None


def _send(base_url: str, case: Any) -> requests.Response:
    return case.call(base_url=base_url + "/api/v1", headers=basic(GUEST_AUTH), timeout=30)


@pytest.mark.parametrize("operation", operations(), ids=lambda op: f"{op.method.upper()} {op.path}")
def test_documented_statuses(whisk_url: str, operation: Any) -> None:
    allowed = {int(code) for code in operation.definition.raw.get("responses", {}) if code.isdigit()}
    allowed |= SPEC_EXTRA.get((operation.method.upper(), operation.path), set())

    @settings(max_examples=DOCUMENTED_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        within_documentation(case)
        response = _send(whisk_url, case)
        assert response.status_code in allowed, (
            f"{case.method} {case.formatted_path} query={case.query} body={str(case.body)[:200]} -> "
            f"{response.status_code} {response.text[:300]}")
        if response.status_code >= 400:
            body = response.json()
            assert set(body) == {"error", "code"} and body["error"], body
        conforms(operation, case, response)

    run()


@pytest.mark.parametrize("operation", operations(), ids=lambda op: f"{op.method.upper()} {op.path}")
def test_no_server_errors_on_raw_input(whisk_url: str, operation: Any) -> None:
    @settings(max_examples=RAW_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        response = _send(whisk_url, case)
        what = (f"{case.method} {case.formatted_path} query={case.query} body={str(case.body)[:200]} -> "
                f"{response.status_code} {response.text[:300]}")
        assert response.status_code < 500, what
        headers = first_values(response)
        assert headers.get("x-request-id") and headers.get("access-control-allow-origin") == "*", what
        if response.status_code >= 400:
            assert headers["content-type"] == "application/json", what
            assert set(response.json()) == {"error", "code"}, what

    run()
