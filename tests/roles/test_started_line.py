"""What `server.started` says about isolation: how actions run, on the roles that run them, and nothing on a
controller, which runs none (its WHISK_CONTAINERS is unused, and no sandbox was probed there)."""

from __future__ import annotations

from whisk.config import Settings
from whisk.roles import isolation


def _settings(**env: str) -> Settings:
    return Settings.from_env({"WHISK_DATA_DIR": "/nonexistent", **env})


def test_the_roles_that_run_actions_say_how() -> None:
    for role in ("standalone", "invoker"):
        assert isolation(_settings(WHISK_ROLE=role)) == "process sandbox (bwrap)"
        assert isolation(_settings(WHISK_ROLE=role, WHISK_TRUST_ALL_CODE="true")) == \
            "none: all code trusted (WHISK_TRUST_ALL_CODE)"
        assert isolation(_settings(WHISK_ROLE=role, WHISK_CONTAINERS="docker://")) == "docker containers"


def test_a_controller_claims_no_isolation() -> None:
    assert isolation(_settings(WHISK_ROLE="controller")) is None
    assert isolation(_settings(WHISK_ROLE="controller", WHISK_CONTAINERS="docker://")) is None
