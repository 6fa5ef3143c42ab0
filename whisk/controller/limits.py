"""The deployment's limits as entities see them: `SystemLimits` from Settings (entities never read settings)."""

from __future__ import annotations

from whisk.config import Settings
from whisk.entities.limits import MB, Bounds, SystemLimits


def system_limits(settings: Settings) -> SystemLimits:
    s = settings
    return SystemLimits(
        memory=Bounds(s.min_action_memory, s.max_action_memory, s.std_action_memory),
        timeout=Bounds(s.min_action_timeout, s.max_action_timeout, s.std_action_timeout),
        logs=Bounds(s.min_action_logs, s.max_action_logs, s.std_action_logs),
        concurrency=Bounds(s.min_action_concurrency, s.max_action_concurrency, s.std_action_concurrency),
        invocations_per_minute=s.invocations_per_minute,
        concurrent_invocations=s.concurrent_invocations,
        fires_per_minute=s.fires_per_minute,
        sequence_length=s.sequence_length,
        max_parameter_size=s.max_parameter_size,
        max_payload_size=s.max_payload_size,
        max_exec_size=s.max_exec_size,
        max_code_unpacked=s.max_code_unpacked_mb * MB,
    )
