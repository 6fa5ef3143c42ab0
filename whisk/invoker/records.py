"""Activation messages in, pool jobs and activation records out (docs/openwhisk.md §2.7, §4, §7.5): what an invoker
knows, mapped onto `Activation`'s constructors."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from whisk.containerpool.job import Job, RunResult
from whisk.entities.activation import Activation, ActivationResponse
from whisk.entities.document import now_ms
from whisk.entities.json_value import compact
from whisk.entities.parameters import annotation_value, truthy
from whisk.messages import ActivationMessage

# What the stop's grace cut short (`Invoker.drain`): the controller's words for the same (controller/ledger.py), which
# a standalone server's controller stores first.
STOPPED = "The activation was interrupted: the platform stopped before it completed."
STOPPED_LOGS = "The activation's logs were not collected: the platform stopped before it completed."


def action_digest(action: dict[str, Any]) -> str:
    """What makes two action definitions the same for warm reuse (docs/openwhisk.md §7.3: not the revision)."""
    keys = ("namespace", "name", "exec", "parameters", "limits", "version", "annotations")
    blob = json.dumps({k: action.get(k) for k in keys}, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()


def _env_text(value: Any) -> str:
    """An init parameter as an environment value (docs/openwhisk.md §4): null "", strings as is, the rest compact
    JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else compact(value)


def make_job(msg: ActivationMessage, action: dict[str, Any], digest: str, *, image: str, api_host: str,
             max_result_bytes: int | None = None) -> Job:
    """`max_result_bytes`: the invoking namespace's payload limit, which its results are held to."""
    exec_ = action.get("exec") or {}
    limits = action.get("limits") or {}
    timeout_ms = int(limits.get("timeout", 60_000))
    namespace = msg.user["namespace"]["name"]
    action_name = f"/{msg.action_path}"
    version = msg.action.get("version") or action.get("version", "0.0.1")
    content = msg.content if msg.content is not None else {}
    init_env: dict[str, str] = {"__OW_API_HOST": api_host}
    if msg.init_args and isinstance(content, dict):
        content = dict(content)
        for name in msg.init_args:
            if name in content:
                init_env[name] = _env_text(content.pop(name))
    run_body: dict[str, Any] = {
        "value": content, "namespace": namespace, "action_name": action_name, "action_version": version,
        "activation_id": msg.activation_id, "transaction_id": msg.transaction_id,
    }
    api_key = msg.user.get("authkey", {}).get("api_key")
    # OpenWhisk's isTruthy(provide-api-key, valueForNonExistent = true): absent asks for the key, null does not.
    # Only to the invoking namespace's own code: an action of a package another namespace published (invoked
    # directly, through a binding or in a sequence) is that tenant's code, and the caller's key would give it the
    # caller's whole namespace (OpenWhisk hands it over).
    owner = str(action.get("namespace") or msg.action_path).split("/", 1)[0]
    if api_key and owner == namespace and truthy(annotation_value(action, "provide-api-key", True)):
        run_body["api_key"] = api_key
        init_env["__OW_API_KEY"] = api_key
    init_env.update({"__OW_NAMESPACE": namespace, "__OW_ACTION_NAME": action_name,
                     "__OW_ACTION_VERSION": version, "__OW_ACTIVATION_ID": msg.activation_id,
                     "__OW_TRANSACTION_ID": msg.transaction_id})
    return Job(
        activation_id=msg.activation_id, transaction_id=msg.transaction_id, invoking_namespace=namespace,
        action_path=msg.action_path, action_version=version, action_digest=digest,
        kind=exec_.get("kind", ""), image=image, code=exec_.get("code"), main=exec_.get("main"),
        binary=bool(exec_.get("binary", False)), memory_mb=int(limits.get("memory", 256)), timeout_ms=timeout_ms,
        logs_mb=int(limits.get("logs", 10)), concurrency=int(limits.get("concurrency", 1)),
        init_env=init_env, run_body=run_body, invoking_owner=str(msg.user["namespace"].get("uuid", "")),
        max_result_bytes=max_result_bytes,
    )


def _identity(msg: ActivationMessage) -> dict[str, str]:
    namespace = msg.user["namespace"]["name"]
    return {"namespace": namespace, "name": msg.action["name"], "subject": msg.user.get("subject", namespace),
            "activation_id": msg.activation_id}


def activation_record(msg: ActivationMessage, action: dict[str, Any], result: RunResult) -> Activation:
    return Activation.of_run(
        **_identity(msg), version=msg.action.get("version") or action.get("version", ""), path=msg.action_path,
        kind=(action.get("exec") or {}).get("kind", "unknown"), binding=msg.action.get("binding"), cause=msg.cause,
        start=result.start_ms, end=result.end_ms, wait_ms=result.start_ms - msg.received_ms, init_ms=result.init_ms,
        timed_out=result.timed_out, limits=action.get("limits") or {},
        response=ActivationResponse.from_json(result.response), logs=tuple(result.logs))


def failure_record(msg: ActivationMessage, status_code: int, error: str) -> Activation:
    """A record for an activation the invoker could not run (docs/openwhisk.md §5.3): zero duration, kind unknown."""
    now = now_ms()
    return Activation.whisk_error(**_identity(msg), version=msg.action.get("version") or "0.0.1",
                                  path=msg.action_path, binding=msg.action.get("binding"), at=now, error=error,
                                  status_code=status_code, wait_ms=now - msg.received_ms, cause=msg.cause)
