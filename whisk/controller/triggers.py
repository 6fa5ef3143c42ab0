"""The triggers collection (docs/openwhisk.md §1.7; OpenWhisk `CTL/Triggers.scala`): plain CRUD; firing is the
activation service's. A trigger's document also carries its rule links, which only the rules collection changes."""

from __future__ import annotations

from typing import Any

from whisk.controller.collection import Collection
from whisk.entities.identity import Identity
from whisk.entities.trigger import Trigger, TriggerPut


class Triggers(Collection):
    name = "triggers"
    entity = Trigger

    def parse(self, identity: Identity, body: Any) -> TriggerPut:
        return TriggerPut.from_json(body)
