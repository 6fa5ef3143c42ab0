"""What a command handler gets: its parsed arguments and flags, the pre-pass fragments, the effective
properties, the output, and (opened on first use) the API client."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from typing import Any

from whisk.cli.arguments import Extracted, key_values, merge
from whisk.cli.client import Api, Call, Reply
from whisk.cli.grammar import Invocation
from whisk.cli.output import Output
from whisk.cli.wskprops import Properties

OpenStore = Callable[[str | None], AbstractAsyncContextManager[Any]]


@dataclass
class Context:
    inv: Invocation
    fragments: Extracted
    props: Properties
    out: Output
    stack: AsyncExitStack
    open_store: OpenStore | None = None
    _api: Api | None = None

    @property
    def args(self) -> list[str]:
        return self.inv.args

    def flag(self, name: str) -> Any:
        return self.inv.values[name]

    def given(self, name: str) -> bool:
        return name in self.inv.given

    async def api(self) -> Api:
        if self._api is None:
            self._api = await self.stack.enter_async_context(Api(self.props, self.out))
        return self._api

    async def send(self, call: Call, *, check: bool = True) -> Reply:
        return await (await self.api()).send(call, check=check)

    # --- -p/-P and -a/-A ------------------------------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        return merge(self.fragments.params)

    def annotations(self) -> dict[str, Any]:
        return merge(self.fragments.annotations, annotation=True)

    def param_array(self) -> list[dict[str, Any]]:
        return key_values(self.params())

    def annotation_array(self) -> list[dict[str, Any]]:
        return key_values(self.annotations())
