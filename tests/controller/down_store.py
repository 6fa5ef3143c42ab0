"""A memory store whose record writes can be made to fail, for the controller's records when the store is away."""

from __future__ import annotations

from whisk.entities.activation import Activation
from whisk.entities.errors import BackendUnavailable
from whisk.store.memory import MemoryStore


class DownStore(MemoryStore):
    """A memory store whose record writes fail while `down`."""

    down = False

    async def put_activation(self, activation: Activation) -> None:
        if self.down:
            raise BackendUnavailable("The store is not reachable.")
        await super().put_activation(activation)
