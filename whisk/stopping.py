"""What a stop does with the work its grace cut short: the one way the controller's compositions and the invoker's
activations end when the process stops before they do (docs/architecture.md, "Nothing accepted is lost").

Each such task stores its record and answers its caller as the stop's when it is cancelled; the stop gives it a
little time for that, then cancels again what is still held up (a store or a bus away is not waited for: the restart,
or the controller finding its invoker silent, records it then).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

# Past the stop's grace, a cancelled task's record is stored within this much more, or left to the restart.
STOP_RECORDS_S = 5.0


async def cancel_then_settle(tasks: Collection[asyncio.Task[Any]], within_s: float = STOP_RECORDS_S
                             ) -> None:
    """Cancel `tasks`, give them `within_s` to finish what their cancellation starts, cancel again those still
    running, and wait until every one has ended."""
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    _, left = await asyncio.wait(tasks, timeout=within_s)
    for task in left:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
