"""Rules (docs/openwhisk.md §1.8, §2.5; OpenWhisk `E/WhiskRule.scala`). A rule names a trigger and an action; its status
is read from the trigger's rule links."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from whisk.entities.document import (body_object, common_json, now_ms, opt_bool, opt_params, opt_version,
                                     read_params, read_version, stored)
from whisk.entities.errors import Invalid
from whisk.entities.json_value import compact
from whisk.entities.names import Addressed, EntityName, EntityPath, FullyQualifiedEntityName
from whisk.entities.parameters import EMPTY, Parameters
from whisk.entities.semver import SemVer
from whisk.entities.trigger import STATUSES


@dataclass(frozen=True, slots=True)
class Rule(Addressed):
    ENTITY_TYPE: ClassVar[str] = "rule"

    namespace: EntityPath
    name: str
    trigger: FullyQualifiedEntityName
    action: FullyQualifiedEntityName
    version: SemVer = SemVer()
    publish: bool = False
    annotations: Parameters = EMPTY
    updated: int = 0
    rev: str | None = None

    def to_json(self, status: str | None = None) -> dict[str, Any]:
        out = common_json(str(self.namespace), self.name, self.version, self.publish, self.annotations, self.updated)
        out.update(trigger=self.trigger.to_json(), action=self.action.to_json())
        if status is not None:
            out["status"] = status
        return out

    def to_doc(self) -> dict[str, Any]:
        return stored(self.to_json(), self.ENTITY_TYPE, self.doc_id, self.rev)

    def summary(self) -> dict[str, Any]:
        return self.to_json()       # rules are listed as whole documents, without status

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Rule:
        namespace = EntityPath.parse(doc["namespace"])

        def ref(value: Any) -> FullyQualifiedEntityName:
            # Very old rules stored bare names relative to the rule's namespace.
            if isinstance(value, str) and "/" not in value:
                return FullyQualifiedEntityName(namespace, value)
            return FullyQualifiedEntityName.from_json(value)

        return cls(namespace, doc["name"], ref(doc["trigger"]), ref(doc["action"]), read_version(doc),
                   bool(doc.get("publish", False)), read_params(doc, "annotations"), int(doc.get("updated", 0)),
                   doc.get("_rev"))


@dataclass(frozen=True, slots=True)
class RulePut:
    trigger: FullyQualifiedEntityName | None = None
    action: FullyQualifiedEntityName | None = None
    version: SemVer | None = None
    publish: bool | None = None
    annotations: Parameters | None = None

    @classmethod
    def from_json(cls, value: Any) -> RulePut:
        body = body_object(value)
        trigger, action = body.get("trigger"), body.get("action")
        return cls(None if trigger is None else FullyQualifiedEntityName.from_json(trigger),
                   None if action is None else FullyQualifiedEntityName.from_json(action),
                   opt_version(body), opt_bool(body, "publish"), opt_params(body, "annotations"))

    def resolve(self, namespace: str) -> RulePut:
        return RulePut(self.trigger.resolve(namespace) if self.trigger else None,
                       self.action.resolve(namespace) if self.action else None,
                       self.version, self.publish, self.annotations)

    def create(self, namespace: EntityPath, name: str) -> Rule:
        if self.trigger is None or self.action is None:
            raise Invalid("rule requires a valid trigger and a valid action")
        return Rule(namespace, EntityName(name).value, self.trigger, self.action, self.version or SemVer(),
                    bool(self.publish), self.annotations or EMPTY, now_ms())

    def update(self, old: Rule) -> Rule:
        return Rule(old.namespace, old.name, self.trigger or old.trigger, self.action or old.action,
                    self.version or old.version.up_patch(), old.publish if self.publish is None else self.publish,
                    old.annotations if self.annotations is None else self.annotations, now_ms(), old.rev)


def parse_status(value: Any) -> str:
    """The body of POST .../rules/{name}: `{"status": "active" | "inactive"}`, the value trimmed. Refusals carry the
    messages of the exceptions OpenWhisk's restricted Status reader turns into "malformed" (WhiskRule.scala)."""
    if not isinstance(value, dict):
        raise Invalid(_match_error(value))
    if "status" not in value:
        raise Invalid("key not found: status")
    status = value["status"]
    if not isinstance(status, str):
        raise Invalid(_match_error(status))
    if not status.strip():
        raise Invalid("requirement failed: argument undefined")
    if status.strip() not in STATUSES:
        raise Invalid(f"requirement failed: {status.strip()} is not a recognized rule state")
    return status.strip()


def _match_error(value: Any) -> str:
    """Scala's MatchError text for a JSON value of the wrong kind, as spray-json classes name it."""
    kind = ("JsObject" if isinstance(value, dict) else "JsArray" if isinstance(value, list)
            else "JsString" if isinstance(value, str) else "JsNull$" if value is None
            else ("JsTrue$" if value else "JsFalse$") if isinstance(value, bool) else "JsNumber")
    return f"{compact(value)} (of class spray.json.{kind})"
