"""The container pool's input (one activation to run) and output (its timed response and logs).

See docs/openwhisk.md §4 and §7.5."""

from __future__ import annotations

from dataclasses import dataclass, field

# How the container that ran a job was obtained (docs/openwhisk.md §7.3); "warming"/"warmingCold" only with concurrency
# > 1.
CONTAINER_STARTS = ("warmed", "warming", "warmingCold", "prewarmed", "cold", "recreated", "recreatedPrewarm")
# A job refused before any container was sought (more memory than the whole pool): no start to count.
NO_CONTAINER = "none"


@dataclass(frozen=True, slots=True)
class Job:
    activation_id: str
    transaction_id: str
    invoking_namespace: str          # the caller's namespace (warm containers are bound to (action, this))
    action_path: str                 # "ns[/pkg]/name" of the resolved action
    action_version: str
    action_digest: str               # identity of the action definition (exec, params, limits, annotations, version)
    kind: str
    image: str
    code: str | None
    main: str | None
    binary: bool
    memory_mb: int
    timeout_ms: int
    logs_mb: int
    concurrency: int
    init_env: dict[str, str]         # /init "env": __OW_* values and init-parameters, already stringified
    run_body: dict                   # the flat /run body (value, ..., api_key?): docs/openwhisk.md §4
    # (the deadline of each is added by the container proxy when the exchange starts)
    invoking_owner: str = ""         # that namespace's uuid: a namespace deleted and made again is another tenant
    max_result_bytes: int | None = None   # the invoking namespace's payload limit, when below the pool's

    @property
    def action_name(self) -> str:
        return self.action_path.rsplit("/", 1)[-1]

    @property
    def warm_key(self) -> tuple[str, str]:
        """A warm container serves only jobs of the same action definition and invoking namespace
        (docs/openwhisk.md §7.3), and of the same owner of that namespace: OpenWhisk compares the name only, so a
        namespace deleted and made again under the same name (`whisk admin`) with an identical action would get
        the old owner's container, with whatever its runs left in memory and /tmp."""
        return f"{self.action_digest}/{self.invoking_owner}", self.invoking_namespace


@dataclass(slots=True)
class RunResult:
    response: dict                   # stored form: {"statusCode": 0..3, "result": {...}, "size"?: int}
    start_ms: int                    # init start (cold/prewarm) or run start, epoch ms; the record's waitTime ends here
    end_ms: int                      # run end (or the failing step's end)
    init_ms: int | None              # time in /init, None for warm
    timed_out: bool
    container_start: str             # one of CONTAINER_STARTS, or NO_CONTAINER
    logs: list[str] = field(default_factory=list)

    @property
    def status_code(self) -> int:
        return self.response["statusCode"]


def error_response(status_code: int, error: object, size: int | None = None) -> dict:
    """A stored response for an error: the value always wrapped as {"error": ...} (docs/openwhisk.md §2.7)."""
    response: dict = {"statusCode": status_code, "result": {"error": error}}
    if size is not None:
        response["size"] = size
    return response
