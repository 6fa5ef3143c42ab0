"""How a runtime's replies to /init and /run become an activation response (docs/openwhisk.md §4; OpenWhisk's
`ActivationResponse.processInitResponseContent` / `processRunResponseContent` and `Messages`). Pure functions."""

from __future__ import annotations

from whisk.containerpool.job import error_response
from whisk.containers.base import Interaction
from whisk.entities import json_value
from whisk.entities.activation import APPLICATION_ERROR, DEVELOPER_ERROR, SUCCESS, WHISK_ERROR, reply_size

ABNORMAL_INIT = "The action did not initialize and exited unexpectedly."
ABNORMAL_RUN = "The action did not produce a valid response and exited unexpectedly."
MEMORY_EXHAUSTED = "The action exhausted its memory and was aborted."
PROVISION_ERROR = "Failed to provision resources to run the action."
LOG_WARNING_DEVELOPER_ERROR = "The action did not initialize or run as expected. Log data might be missing."


def timed_out_message(timeout_ms: int, init: bool) -> str:
    during = " during initialization" if init else ""
    return f"The action exceeded its time limits of {timeout_ms} milliseconds{during}."


def invalid_run_response(body: str) -> str:
    return "The action did not produce a valid JSON or JSON Array response" + (f": {body}" if body else ".")


def truncated_response(body: bytes, length: int, max_bytes: int) -> str:
    head = body[:max_bytes].decode("utf-8", errors="replace")
    return (f"The action produced a response that exceeded the allowed length: {length} > {max_bytes} bytes. "
            f"The truncated response was: {head}")


def _text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


def too_deep_response() -> str:
    return f"The action produced a result nested too deeply (more than {json_value.MAX_DEPTH} levels)."


def _parse(text: str) -> object:
    """The reply as JSON whisk can carry (no NaN, lone surrogates or deep nesting), else _INVALID or _TOO_DEEP."""
    try:
        return json_value.parse(text)
    except json_value.TooDeep:
        return _TOO_DEEP
    except json_value.NotJson:
        return _INVALID


_INVALID = object()
_TOO_DEEP = object()


def timed_out(reply: Interaction, timeout_ms: int) -> bool:
    """OpenWhisk counts an exchange as timed out when it lasted the whole limit (the `timeout` annotation)."""
    return not reply.oom_killed and (reply.timed_out or reply.duration_ms >= timeout_ms)


def init_response(reply: Interaction, timeout_ms: int) -> dict | None:
    """None when /init succeeded, else the developer error that ends the activation."""
    if reply.status == 200 and not reply.timed_out:
        return None
    if reply.oom_killed:
        return error_response(DEVELOPER_ERROR, MEMORY_EXHAUSTED)
    if reply.timed_out or reply.duration_ms >= timeout_ms:
        return error_response(DEVELOPER_ERROR, timed_out_message(timeout_ms, init=True))
    if reply.status is None:
        return error_response(DEVELOPER_ERROR, ABNORMAL_INIT)
    text = _text(reply.body)
    parsed = _parse(text)
    if isinstance(parsed, dict) and "error" in parsed:
        return error_response(DEVELOPER_ERROR, parsed["error"], reply_size(text))
    return error_response(DEVELOPER_ERROR, f"The action failed during initialization: {text}", reply_size(text))


def run_response(reply: Interaction, timeout_ms: int, max_bytes: int) -> dict:
    """The stored response of a /run exchange (status codes 0-2; a container never causes a whisk error here)."""
    if reply.oom_killed:
        return error_response(DEVELOPER_ERROR, MEMORY_EXHAUSTED)
    if reply.timed_out or reply.duration_ms >= timeout_ms:
        return error_response(DEVELOPER_ERROR, timed_out_message(timeout_ms, init=False))
    if reply.status is None:
        return error_response(DEVELOPER_ERROR, ABNORMAL_RUN)
    length = len(reply.body) if reply.size is None else reply.size
    if length > max_bytes:
        return error_response(APPLICATION_ERROR, truncated_response(reply.body, length, max_bytes), length)
    text = _text(reply.body)
    size = reply_size(text)
    parsed = _parse(text)
    if parsed is _TOO_DEEP:
        return error_response(DEVELOPER_ERROR, too_deep_response(), size)
    if isinstance(parsed, dict):
        if "error" in parsed:
            status = APPLICATION_ERROR if reply.status == 200 else DEVELOPER_ERROR
            return error_response(status, parsed["error"], size)
        if reply.status == 200:
            return {"statusCode": SUCCESS, "result": parsed, "size": size}
    elif isinstance(parsed, list) and reply.status == 200:
        return {"statusCode": SUCCESS, "result": parsed, "size": size}
    return error_response(DEVELOPER_ERROR, invalid_run_response(text), size)


def whisk_error(message: str = PROVISION_ERROR) -> dict:
    return error_response(WHISK_ERROR, message)


def keeps_container(response: dict) -> bool:
    """Success and application errors leave the container warm; anything else destroys it (docs/openwhisk.md §4)."""
    return response["statusCode"] in (SUCCESS, APPLICATION_ERROR)
