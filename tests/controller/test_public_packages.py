"""Another namespace's listing of packages (docs/openwhisk.md §1.2: only the public ones) reads the store's public
packages with the caller's skip and limit, never the whole namespace: a tenant with 20,000 packages made each such
listing read all of them (~40 MB of summaries, 0.32 s) for a page of 30 (docs/performance.md)."""

from __future__ import annotations

from typing import Any

from whisk.controller.packages import Packages
from whisk.controller.repository import Repository
from whisk.entities.limits import SystemLimits
from whisk.entities.names import EntityPath
from whisk.store.memory import MemoryStore


class Stranger:
    namespace = "other"

    def owns(self, namespace: str) -> bool:
        return namespace == self.namespace


class Watched(MemoryStore):
    """The memory store, noting the largest page of packages `list_entities` was asked for (0: all)."""

    def __init__(self) -> None:
        super().__init__()
        self.package_limits: list[int] = []

    async def list_entities(self, entity_type: str, namespace: str, *, skip: int = 0,
                            limit: int = 30) -> list[dict[str, Any]]:
        if entity_type == "package":
            self.package_limits.append(limit)
        return await super().list_entities(entity_type, namespace, skip=skip, limit=limit)


async def test_another_namespaces_packages_are_read_a_page_at_a_time() -> None:
    async with Watched() as store:
        for n in range(50):
            await store.put({"_id": f"owner/p{n:02}", "entityType": "package", "namespace": "owner",
                             "name": f"p{n:02}", "updated": n, "publish": n % 10 == 0, "binding": {},
                             "version": "0.0.1", "annotations": [], "parameters": []})
        packages = Packages(Repository(store, SystemLimits()), None, None)    # type: ignore[arg-type]
        owner = EntityPath.of("owner")
        listed = await packages.list_in(Stranger(), owner, 1, 2, False)       # type: ignore[arg-type]
        assert [p["name"] for p in listed] == ["p30", "p20"]
        assert await packages.list_in(Stranger(), owner, 1, 2, True) == {"packages": 4}   # type: ignore[arg-type]
        assert 0 not in store.package_limits, "the namespace's packages were all read for one page"
