"""Actions (docs/openwhisk.md §1.6, §2.3; OpenWhisk `E/WhiskAction.scala`, `CTL/Actions.scala` make/update)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from whisk.entities.document import (body_object, common_json, now_ms, opt_bool, opt_params, opt_strings,
                                     opt_version, read_params, read_version, stored)
from whisk.entities.errors import Invalid
from whisk.entities.exec import Exec, KindResolver, SequenceExec, exec_from_doc, parse_exec
from whisk.entities.limits import ActionLimits, ActionLimitsPut
from whisk.entities.names import Addressed, EntityName, EntityPath
from whisk.entities.parameters import EMPTY, Parameters
from whisk.entities.semver import SemVer

# Well-known annotations (docs/openwhisk.md §2.2).
PROVIDE_API_KEY = "provide-api-key"
EXEC_ANNOTATION = "exec"
WEB_EXPORT = "web-export"
FINAL = "final"
RAW_HTTP = "raw-http"
WEB_CUSTOM_OPTIONS = "web-custom-options"
REQUIRE_WHISK_AUTH = "require-whisk-auth"
CONDUCTOR = "conductor"
FEED = "feed"

RESERVED = "Request defines parameters that are not allowed (e.g., reserved properties)."
HIDDEN_SECRET = "********"


def web_secret_hidden(annotations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Annotations as another namespace reads them (a published package's actions): a `require-whisk-auth` secret
    masked, for it opens the web action to anyone, run as its owner; `true` and `false` are no secret. OpenWhisk
    shows it to every reader (docs/openwhisk.md §2.2)."""
    return [{**a, "value": HIDDEN_SECRET} if a.get("key") == REQUIRE_WHISK_AUTH and not isinstance(a.get("value"), bool)
            else a for a in annotations]


@dataclass(frozen=True, slots=True)
class Action(Addressed):
    ENTITY_TYPE: ClassVar[str] = "action"

    namespace: EntityPath
    name: str
    exec: Exec
    parameters: Parameters = EMPTY
    limits: ActionLimits = ActionLimits(60_000, 256, 10, 1)
    version: SemVer = SemVer()
    publish: bool = False
    annotations: Parameters = EMPTY
    updated: int = 0
    rev: str | None = None

    @property
    def kind(self) -> str:
        return self.exec.kind

    @property
    def final_keys(self) -> set[str]:
        """Parameters an invoke may not override: the defined ones, when annotation `final` is boolean true (as
        OpenWhisk reads it: `getAs[Boolean]`, so "yes" or 1 freeze nothing)."""
        return self.parameters.defined_keys() if self.annotations.get(FINAL) is True else set()

    def refuse_overrides(self, payload: Any) -> None:
        """The `final` rule for a request's payload, whatever the action runs (primitive, sequence, conductor)."""
        if isinstance(payload, dict) and self.final_keys & payload.keys():
            raise Invalid(RESERVED)

    def inherit(self, params: Parameters) -> Action:
        """Package (and binding) parameters under the action's own."""
        return dataclasses.replace(self, parameters=params.merge(self.parameters))

    def to_json(self, code: bool = True) -> dict[str, Any]:
        out = common_json(str(self.namespace), self.name, self.version, self.publish, self.annotations, self.updated)
        out.update(exec=self.exec.to_json(code), parameters=self.parameters.to_json(), limits=self.limits.to_json())
        return out

    def to_doc(self) -> dict[str, Any]:
        return stored(self.to_json(), self.ENTITY_TYPE, self.doc_id, self.rev)

    def summary(self) -> dict[str, Any]:
        binary = bool(getattr(self.exec, "binary", False))
        return {"namespace": str(self.namespace), "name": self.name, "version": str(self.version),
                "publish": self.publish, "annotations": self.annotations.to_json(), "limits": self.limits.to_json(),
                "exec": {"binary": binary}, "updated": self.updated}

    @classmethod
    def from_doc(cls, doc: dict[str, Any], standard: ActionLimits) -> Action:
        return cls(EntityPath.parse(doc["namespace"]), doc["name"], exec_from_doc(doc.get("exec") or {}),
                   read_params(doc, "parameters"), ActionLimits.from_doc(doc.get("limits"), standard),
                   read_version(doc), bool(doc.get("publish", False)), read_params(doc, "annotations"),
                   int(doc.get("updated", 0)), doc.get("_rev"))


def _amend(annotations: Parameters, exec_: Exec, create: bool) -> Parameters:
    """On create add `provide-api-key: false` when absent; always set `exec` to the kind."""
    if create and PROVIDE_API_KEY not in annotations:
        annotations = annotations.with_value(PROVIDE_API_KEY, False)
    return annotations.with_value(EXEC_ANNOTATION, exec_.kind)


def _sequence_params(seq: SequenceExec) -> Parameters:
    # Legacy: a sequence's parameters are one `_actions` array of its components (OpenWhisk still does this).
    return Parameters.of(_actions=[c.with_leading_slash() for c in seq.components])


@dataclass(frozen=True, slots=True)
class ActionPut:
    exec: Exec | None = None
    parameters: Parameters | None = None
    limits: ActionLimitsPut | None = None
    version: SemVer | None = None
    publish: bool | None = None
    annotations: Parameters | None = None
    del_annotations: tuple[str, ...] | None = None

    @classmethod
    def from_json(cls, value: Any, resolve_kind: KindResolver) -> ActionPut:
        body = body_object(value)
        exec_ = body.get("exec")
        limits = body.get("limits")
        return cls(
            exec=None if exec_ is None else parse_exec(exec_, resolve_kind),
            parameters=opt_params(body, "parameters"),
            limits=None if limits is None else ActionLimitsPut.from_json(limits),
            version=opt_version(body),
            publish=opt_bool(body, "publish"),
            annotations=opt_params(body, "annotations"),
            del_annotations=opt_strings(body, "delAnnotations"),
        )

    def resolve(self, namespace: str) -> ActionPut:
        """Replace `_` in sequence components with the caller's namespace."""
        if isinstance(self.exec, SequenceExec):
            return dataclasses.replace(self, exec=self.exec.resolve(namespace))
        return self

    def create(self, namespace: EntityPath, name: str, standard: ActionLimits) -> Action:
        if self.exec is None:
            raise Invalid("exec undefined")
        limits = self.limits.apply(standard) if self.limits else standard
        if isinstance(self.exec, SequenceExec):
            params = _sequence_params(self.exec)
        else:
            params = self.parameters or EMPTY
        return Action(namespace, EntityName(name).value, self.exec, params, limits, self.version or SemVer(),
                      bool(self.publish), _amend(self.annotations or EMPTY, self.exec, create=True), now_ms())

    def update(self, old: Action) -> Action:
        limits = self.limits.apply(old.limits) if self.limits else old.limits
        old_is_seq = isinstance(old.exec, SequenceExec)
        if isinstance(self.exec, SequenceExec):
            params = _sequence_params(self.exec)
        elif self.exec is not None:
            params = self.parameters if self.parameters is not None else (EMPTY if old_is_seq else old.parameters)
        else:
            params = old.parameters if old_is_seq or self.parameters is None else self.parameters
        exec_ = self.exec or old.exec
        annotations = old.annotations
        if self.del_annotations is not None:
            annotations = annotations.without(*self.del_annotations)
        annotations = annotations.merge(self.annotations)
        return Action(old.namespace, old.name, exec_, params, limits, self.version or old.version.up_patch(),
                      old.publish if self.publish is None else self.publish,
                      _amend(annotations, exec_, create=False), now_ms(), old.rev)

    @property
    def sizes(self) -> list[tuple[str, int | None]]:
        """(field, size) of the fields OpenWhisk size-checks on PUT, in its order."""
        return [("exec", self.exec.size if self.exec else None),
                ("parameters", self.parameters.size if self.parameters is not None else None),
                ("annotations", self.annotations.size if self.annotations is not None else None)]
