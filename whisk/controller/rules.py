"""The rules collection (docs/openwhisk.md §1.8; OpenWhisk `CTL/Rules.scala`). A rule's status lives only in its
trigger's rule links: creating a rule links it (active), updating may move the link, deleting unlinks, and POST
`{"status": ...}` flips the link. Writes go rule first, then trigger; if the trigger write fails the rule write
is undone, so a refused request leaves the store as it was.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from whisk.controller.collection import Collection, as_stored, malformed
from whisk.controller.entitlement import ACTIVATE, READ, Resource
from whisk.entities.action import Action
from whisk.entities.errors import Conflict, Corrupted, Invalid, NotFound
from whisk.entities.identity import Identity
from whisk.entities.names import EntityName, EntityPath, FullyQualifiedEntityName
from whisk.entities.rule import Rule, RulePut, parse_status
from whisk.entities.trigger import ACTIVE, INACTIVE, RuleLink, Trigger

NO_TRIGGER = "Only rules with existing triggers can be activated"


class Rules(Collection):
    name = "rules"
    entity = Rule

    def summary(self, doc: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.repo.read(Rule, doc).to_json()
        except Corrupted:
            return as_stored(doc)

    async def _trigger(self, fqn: FullyQualifiedEntityName) -> Trigger | None:
        try:
            return await self.repo.fetch(Trigger, fqn.doc_id)
        except (Conflict, Corrupted):
            return None                                 # not a trigger (or unreadable): the rule reads inactive

    async def _status(self, rule: Rule) -> str:
        trigger = await self._trigger(rule.trigger)
        return trigger.rule_status(rule.doc_id) if trigger else INACTIVE

    async def view(self, identity: Identity, entity: Rule, options: dict[str, Any]) -> Any:
        return entity.to_json(await self._status(entity))

    # --- put ------------------------------------------------------------------------------------------------------
    def parse(self, identity: Identity, body: Any) -> RulePut:
        return RulePut.from_json(body).resolve(identity.namespace)

    async def validate(self, identity: Identity, request: RulePut) -> None:
        refs = []
        if request.trigger is not None:
            refs.append(Resource(request.trigger.path, "triggers", request.trigger.name))
        if request.action is not None:
            refs.append(Resource(request.action.path, "actions", request.action.name))
        await self.entitlement.check_all(identity, READ, refs)

    async def _existing(self, trigger: FullyQualifiedEntityName, action: FullyQualifiedEntityName) -> Trigger:
        try:
            found = await self.repo.fetch(Trigger, trigger.doc_id)
        except Conflict:
            found = None
        if found is None:
            raise Invalid(f"trigger {trigger.with_leading_slash()} does not exist")
        try:
            real = await self.repo.resolve_action_name(action)
            if await self.repo.fetch(Action, real.doc_id) is None:
                raise NotFound()
        except (NotFound, Conflict):
            raise Invalid(f"action {action.with_leading_slash()} does not exist") from None
        return found

    async def create(self, identity: Identity, request: RulePut, path: EntityPath, name: str) -> Any:
        rule = request.create(path, name)
        trigger = await self._existing(rule.trigger, rule.action)
        return rule, [(trigger, trigger.with_rule(rule.doc_id, RuleLink(rule.action, ACTIVE)))]

    async def update(self, identity: Identity, request: RulePut, old: Rule) -> Any:
        rule = request.update(old)
        old_trigger = await self._trigger(old.trigger)
        status = old_trigger.rule_status(old.doc_id) if old_trigger else INACTIVE
        new_trigger = await self._existing(rule.trigger, rule.action)
        changes = []
        if old_trigger is not None and old_trigger.doc_id != new_trigger.doc_id:
            changes.append((old_trigger, old_trigger.without_rule(old.doc_id)))
        changes.append((new_trigger, new_trigger.with_rule(rule.doc_id, RuleLink(rule.action, status))))
        return rule, changes

    async def write(self, identity: Identity, new: Any, old: Rule | None) -> Any:
        """Rule first, then each trigger; on a conflict put back what was written and re-raise."""
        rule, changes = new
        saved = await self.repo.save(rule)
        written: list[tuple[Trigger, Trigger]] = []
        try:
            for original, changed in changes:
                written.append((original, await self.repo.save(changed)))
        except Conflict:
            for original, after in reversed(written):
                await self.repo.save(dataclasses.replace(original, rev=after.rev))
            if old is None:
                await self.repo.remove(saved)
            else:
                await self.repo.save(dataclasses.replace(old, rev=saved.rev))
            raise
        return saved, written[-1][1]

    async def put_response(self, identity: Identity, saved: Any) -> Any:
        rule, trigger = saved
        return rule.to_json(trigger.rule_status(rule.doc_id))

    # --- delete ---------------------------------------------------------------------------------------------------
    async def confirm_delete(self, identity: Identity, entity: Rule, options: dict[str, Any]) -> None:
        trigger = await self._trigger(entity.trigger)
        if trigger is not None and entity.doc_id in (trigger.rules or {}):
            await self.repo.save(trigger.without_rule(entity.doc_id))

    async def delete_response(self, identity: Identity, entity: Rule) -> Any:
        return entity.to_json(INACTIVE)

    # --- enable / disable -----------------------------------------------------------------------------------------
    async def set_status(self, identity: Identity, path: EntityPath, name: str,
                         read: Callable[[], Awaitable[Any]]) -> None:
        """POST `{"status": "active" | "inactive"}` (`read` gives the body, read once the caller is authorized, as
        OpenWhisk unmarshals it): rewrite the trigger's link when the status changes."""
        EntityName(name)
        await self.entitlement.authorize(identity, ACTIVATE, Resource(path, self.name, name))
        body = await read()
        try:
            status = parse_status(body)                 # before the lookup, as OpenWhisk reads the body first
        except Invalid as exc:
            raise malformed(exc) from None
        rule = await self.repo.need(Rule, f"{path}/{name}")
        try:
            trigger = await self.repo.fetch(Trigger, rule.trigger.doc_id)
        except Conflict:
            trigger = None
        if (trigger.rule_status(rule.doc_id) if trigger else INACTIVE) == status:
            return                                      # without its trigger a rule reads inactive: a no-op, 200
        if trigger is None:
            raise NotFound(NO_TRIGGER)
        await self.repo.save(trigger.with_rule(rule.doc_id, RuleLink(rule.action, status)))
