"""Triggers (docs/openwhisk.md §1.7, §2.4; OpenWhisk `E/WhiskTrigger.scala`). A trigger keeps the links to its rules,
with each rule's status: the only place a rule's status lives."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from whisk.entities.document import (body_object, common_json, now_ms, opt_bool, opt_params, opt_version,
                                     read_params, read_version, stored)
from whisk.entities.errors import Invalid
from whisk.entities.names import Addressed, EntityName, EntityPath, FullyQualifiedEntityName, is_path
from whisk.entities.parameters import EMPTY, Parameters
from whisk.entities.semver import SemVer

ACTIVE = "active"
INACTIVE = "inactive"
STATUSES = (ACTIVE, INACTIVE)


@dataclass(frozen=True, slots=True)
class RuleLink:
    """A rule as its trigger sees it: the action to run and whether the rule is active."""

    action: FullyQualifiedEntityName
    status: str = ACTIVE

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action.to_json(), "status": self.status}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> RuleLink:
        return cls(FullyQualifiedEntityName.from_json(value["action"]), value.get("status", INACTIVE))


@dataclass(frozen=True, slots=True)
class Trigger(Addressed):
    ENTITY_TYPE: ClassVar[str] = "trigger"

    namespace: EntityPath
    name: str
    parameters: Parameters = EMPTY
    version: SemVer = SemVer()
    publish: bool = False
    annotations: Parameters = EMPTY
    rules: dict[str, RuleLink] | None = field(default=None, hash=False)  # rule doc id "ns/rule" -> link
    updated: int = 0
    rev: str | None = None

    def active_rules(self) -> dict[str, RuleLink]:
        return {k: r for k, r in (self.rules or {}).items() if r.status == ACTIVE}

    def rule_status(self, rule_id: str) -> str:
        link = (self.rules or {}).get(rule_id)
        return link.status if link else INACTIVE

    def with_rule(self, rule_id: str, link: RuleLink) -> Trigger:
        return dataclasses.replace(self, rules={**(self.rules or {}), rule_id: link})

    def without_rule(self, rule_id: str) -> Trigger:
        if self.rules is None:
            return self
        return dataclasses.replace(self, rules={k: v for k, v in self.rules.items() if k != rule_id})

    def to_json(self) -> dict[str, Any]:
        out = common_json(str(self.namespace), self.name, self.version, self.publish, self.annotations, self.updated)
        out.update(parameters=self.parameters.to_json(), limits={})
        if self.rules is not None:
            out["rules"] = {k: r.to_json() for k, r in self.rules.items()}
        return out

    def to_doc(self) -> dict[str, Any]:
        return stored(self.to_json(), self.ENTITY_TYPE, self.doc_id, self.rev)

    def summary(self) -> dict[str, Any]:
        return {"namespace": str(self.namespace), "name": self.name, "version": str(self.version),
                "publish": self.publish, "annotations": self.annotations.to_json(), "updated": self.updated}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Trigger:
        rules = doc.get("rules")
        links = None if rules is None else {k: RuleLink.from_json(v) for k, v in rules.items()}
        return cls(EntityPath.parse(doc["namespace"]), doc["name"], read_params(doc, "parameters"),
                   read_version(doc), bool(doc.get("publish", False)), read_params(doc, "annotations"), links,
                   int(doc.get("updated", 0)), doc.get("_rev"))


@dataclass(frozen=True, slots=True)
class TriggerPut:
    parameters: Parameters | None = None
    version: SemVer | None = None
    publish: bool | None = None
    annotations: Parameters | None = None

    @classmethod
    def from_json(cls, value: Any) -> TriggerPut:
        body = body_object(value)
        limits = body.get("limits")
        if limits is not None and not isinstance(limits, dict):
            raise Invalid("trigger limits malformed")
        return cls(opt_params(body, "parameters"), opt_version(body), opt_bool(body, "publish"),
                   opt_params(body, "annotations"))

    def create(self, namespace: EntityPath, name: str) -> Trigger:
        trigger = Trigger(namespace, EntityName(name).value, self.parameters or EMPTY, self.version or SemVer(),
                          bool(self.publish), self.annotations or EMPTY, None, now_ms())
        feed = trigger.annotations.get("feed")
        if feed is not None and not (isinstance(feed, str) and is_path(feed)):
            raise Invalid("Feed name is not valid")
        return trigger

    def update(self, old: Trigger) -> Trigger:
        """Each given field replaces the old one (annotations too); the rule links are kept."""
        return Trigger(old.namespace, old.name,
                       old.parameters if self.parameters is None else self.parameters,
                       self.version or old.version.up_patch(),
                       old.publish if self.publish is None else self.publish,
                       old.annotations if self.annotations is None else self.annotations,
                       old.rules, now_ms(), old.rev)
