"""The shape of a Swagger document createApi stores (docs/openwhisk.md §1.13): every part that whisk reads again
(getApi, deleteApi, a later createApi merging an operation in, a request to a route) is of the type it is read as.
Upstream stores a form B document unchecked and fails on it later; here it is refused where it enters, as a 502
`ApiFailure` naming the part. Parts whisk never reads are left as given. And a document is stored only if it
can be answered as JSON again (`answerable`).
"""

from __future__ import annotations

import json
from typing import Any

from whisk.controller.apidoc import CREATE_FAILURE, VERBS, ApiFailure

_EXPECTED: dict[type, str] = {dict: "an object", list: "an array", str: "a string"}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return _EXPECTED.get(type(value), "an object")


def _shape(value: Any, expected: type, where: str) -> Any:
    if not isinstance(value, expected):
        raise ApiFailure(f"{CREATE_FAILURE}The swagger's {where} is {_kind(value)}; it should be "
                         f"{_EXPECTED[expected]}.")
    return value


def _optional(parent: dict[str, Any], key: str, expected: type, where: str) -> Any:
    """parent[key] checked, or an empty one when it is absent or null (the readers treat null as absent)."""
    if parent.get(key) is None:
        return expected()
    return _shape(parent[key], expected, f"{where}.{key}" if where else key)


def check_shape(swagger: dict[str, Any]) -> None:
    """Refuse a form B document that a reader could not walk. `paths` itself, and keys under a path that are not
    verbs, are left to `check_swagger`, which answers them with the gateway's own words."""
    _shape(swagger.get("basePath"), str, "basePath")
    paths = swagger.get("paths")
    for path, item in paths.items() if isinstance(paths, dict) else ():
        where = f'paths["{path}"]'
        _shape(item, dict, where)
        _optional(item, "parameters", list, where)
        for verb, op in item.items():
            if verb.lower() in VERBS:
                _shape(op, dict, f"{where}.{verb}")
                _optional(op, "parameters", list, f"{where}.{verb}")
                _optional(op, "x-openwhisk", dict, f"{where}.{verb}")
    config = _optional(swagger, "x-ibm-configuration", dict, "")
    where = "x-ibm-configuration.assembly"
    for i, step in enumerate(_optional(_optional(config, "assembly", dict, "x-ibm-configuration"), "execute", list,
                                       where)):
        _shape(step, dict, f"{where}.execute[{i}]")
        switch = _optional(step, "operation-switch", dict, f"{where}.execute[{i}]")
        for j, case in enumerate(_optional(switch, "case", list, f"{where}.execute[{i}].operation-switch")):
            _check_case(case, f"{where}.execute[{i}].operation-switch.case[{j}]")


def _check_case(case: Any, where: str) -> None:
    _shape(case, dict, where)
    for k, op_id in enumerate(_optional(case, "operations", list, where)):
        _shape(op_id, str, f"{where}.operations[{k}]")
    for k, step in enumerate(_optional(case, "execute", list, where)):
        _shape(step, dict, f"{where}.execute[{k}]")
        _optional(step, "invoke", dict, f"{where}.execute[{k}]")
        variables = _optional(step, "set-variable", dict, f"{where}.execute[{k}]")
        for m, action in enumerate(_optional(variables, "actions", list, f"{where}.execute[{k}].set-variable")):
            _shape(action, dict, f"{where}.execute[{k}].set-variable.actions[{m}]")


def answerable(swagger: dict[str, Any]) -> bool:
    """Whether the document can be answered as JSON. whisk's parser reads 1e400 as infinity, which JSON cannot carry;
    older versions also stored NaN and lone surrogates (from an apidoc given as a string)."""
    try:
        json.dumps(swagger, allow_nan=False, ensure_ascii=False).encode()
    except (ValueError, RecursionError):          # UnicodeEncodeError is a ValueError
        return False
    return True


def check_answerable(swagger: dict[str, Any]) -> None:
    if not answerable(swagger):
        raise ApiFailure(f"{CREATE_FAILURE}The API would hold a value that JSON cannot carry (a number beyond any "
                         "float, NaN or a lone surrogate).")
