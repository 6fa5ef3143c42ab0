"""Every Prometheus metric whisk exports (docs/openwhisk.md §9.1, §9.2), and the cheap calls the hot path makes.

Served as text by `GET /metrics` on every role (`whisk/api/health.py`), from prometheus-client's default registry,
which also carries the process metrics (`process_resident_memory_bytes`, ...). Three kinds of source:

* events counted where they happen: `observe_activation` (once per stored record: the invoker's, and the
  controller's for sequences, compositions and the alarms feeds' actions it serves), `observe_container_start`
  (invoker, once per run), `observe_throttle` (controller), `observe_completion` (the ledger, as the balancer
  releases an activation), `observe_overload` (the sharding balancer), `instrument` (every store call, and every bus
  call but the in-process bus's), the HTTP middleware;
* states read at scrape time from the objects that own them (`watch_pool`, `watch_balancer`, `watch_bus`), so the
  hot path pays nothing for gauges;
* the names of OpenWhisk's user-events service for activations, so its Grafana dashboards work unchanged.

Labels stay low-cardinality: route templates, never raw paths; namespaces and action names (bounded per
namespace, and capped at MAX_ACTIONS series sets overall); never activation or transaction ids.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import structlog
from prometheus_client import REGISTRY, Counter, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from whisk.entities.activation import STATUS_IDS, Activation
from whisk.loopmetrics import LoopCounter, LoopGauge, LoopHistogram
from whisk.loadbalancer.base import LoadBalancer

log = structlog.get_logger(__name__)

# `_created` series double the output and no dashboard reads them.
disable_created_metrics()

MB = 1_048_576
# Seconds: from a warm run in milliseconds to the 300 s action timeout limit.
ACTION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 75)
BACKEND_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
SIZE_BUCKETS = (64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
# Past this many (namespace, initiator, action, kind, memory) sets, new ones are counted under OVERFLOW.
MAX_ACTIONS = 1000
OVERFLOW = "_other"

# --- HTTP, every role ----------------------------------------------------------------------------------------------

HTTP_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"))
# The series every invoke touches are whisk/loopmetrics.py's: plain numbers changed on the loop, no lock per change.
HTTP_REQUESTS = LoopCounter("whisk_http_requests", "HTTP responses by method, route template and status",
                            ("method", "route", "status"))
HTTP_SECONDS = LoopHistogram("whisk_http_request_duration_seconds",
                             "HTTP request latency by method and route template", ("method", "route"),
                             buckets=HTTP_BUCKETS)
# The labelled children of each (method, route, status) seen: `labels()` costs ~0.3 us a call (the label values made
# text), a lookup here a tenth of that, twice a request. Bounded by the methods, the route templates and the statuses
# the API answers.
_http_series: dict[tuple[str, str, str], tuple[Any, Any]] = {}
# The `status` label: a registered code as it is (and nginx's 499, a client gone), any other by its class ("4xx"). A
# web action answers any status of 200-599 it likes: one series per code would let a tenant add ~400 per route and
# method.
_STATUS_LABELS = {int(code): str(int(code)) for code in HTTPStatus} | {499: "499"}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """One HTTP response; `method` is one of HTTP_METHODS or "other", `route` a route template."""
    key = (method, route, _STATUS_LABELS.get(status) or f"{status // 100}xx")
    series = _http_series.get(key)
    if series is None:
        series = _http_series[key] = (HTTP_REQUESTS.labels(*key), HTTP_SECONDS.labels(method, route))
    series[0].inc()
    series[1].observe(seconds)

# --- activations: OpenWhisk's user-events names and labels (PrometheusRecorder, docs/openwhisk.md §9.2) -----------

_ACTION = ("namespace", "initiator", "action")
ACTIVATIONS = LoopCounter("openwhisk_action_activations", "Activation count", _ACTION + ("kind", "memory"))
COLD_STARTS = LoopCounter("openwhisk_action_coldStarts", "Cold start counts", _ACTION)
# OpenWhisk exposes this counter without a `_total` suffix, and the dashboards query that name; prometheus-client
# would append `_total` to a Counter, so it is a gauge that only ever goes up.
STATUS = LoopGauge("openwhisk_action_status", "Activation failure status type (a counter)", _ACTION + ("status",))
WAIT_SECONDS = LoopHistogram("openwhisk_action_waitTime_seconds", "Internal system hold time", _ACTION,
                             buckets=ACTION_BUCKETS)
INIT_SECONDS = LoopHistogram("openwhisk_action_initTime_seconds",
                             "Time it took to initialize an action, e.g. docker init", _ACTION, buckets=ACTION_BUCKETS)
DURATION_SECONDS = LoopHistogram("openwhisk_action_duration_seconds", "Actual time the action code was running",
                                 _ACTION, buckets=ACTION_BUCKETS)
RESPONSE_BYTES = LoopHistogram("openwhisk_action_response_size_bytes", "Size of the action's result", _ACTION,
                               buckets=SIZE_BUCKETS)
MEMORY = LoopGauge("openwhisk_action_memory", "Memory limit of the action containers (MB)", _ACTION)
LIMIT_CONCURRENT = LoopCounter("openwhisk_action_limit_concurrent",
                               "A namespace exceeded its concurrent invocations limit", ("namespace",))
LIMIT_TIMED = LoopCounter("openwhisk_action_limit_timed",
                          "A namespace reached its invocations or trigger fires per minute limit", ("namespace",))

# --- invoker and balancer events ------------------------------------------------------------------------------------

CONTAINER_STARTS = LoopCounter("whisk_invoker_container_starts",
                               "How the container of each activation was obtained", ("start",))
# 1 while the invoker's event loop has a CPU of its own and the containers run on the others (invoker/loop_core.py).
LOOP_CPU_RESERVED = LoopGauge("whisk_invoker_loop_cpu_reserved",
                              "The event loop is saturated: it has a CPU to itself, containers the others", ())
COMPLETIONS = LoopCounter("whisk_loadbalancer_completions", "Activations the balancer closed, by outcome", ("outcome",))
# OpenWhisk's loadbalancer_{managed,blackbox}_system_overload: the cluster (this controller's share of it) is full.
OVERLOADS = LoopCounter("whisk_loadbalancer_overloads", "Activations forced onto a random healthy invoker as none "
                        "had room, by partition", ("partition",))
# The alarms feeds (whisk/alarms/scheduler.py): each tick a controller claimed, by what became of it.
ALARM_FIRES = Counter("whisk_alarm_fires", "Alarm ticks by feed and outcome (fired, no_active_rule, throttled, "
                      "disabled, failed, missed)", ("feed", "outcome"))

# --- store and bus calls (`instrument`) -----------------------------------------------------------------------------

BACKEND_SECONDS = LoopHistogram("whisk_backend_operation_seconds", "Store and bus call latency", ("port", "op"),
                                buckets=BACKEND_BUCKETS)
BACKEND_ERRORS = LoopCounter("whisk_backend_errors", "Store and bus calls that raised, by exception type",
                             ("port", "op", "error"))


@dataclass(frozen=True, slots=True)
class _Series:
    activations: Any
    cold_starts: Any
    wait: Any
    init: Any
    duration: Any
    size: Any
    memory: Any
    status: tuple[Any, ...]


_series: dict[tuple[str, str, str, str, str], _Series] = {}


def _series_for(namespace: str, initiator: str, action: str, kind: str, memory: str) -> _Series:
    key = (namespace, initiator, action, kind, memory)
    series = _series.get(key)
    if series is None:
        if len(_series) >= MAX_ACTIONS:
            key = (OVERFLOW, OVERFLOW, OVERFLOW, kind, memory)
            series = _series.get(key)
            if series is not None:
                return series
        namespace, initiator, action = key[:3]
        labels = (namespace, initiator, action)
        series = _Series(
            activations=ACTIVATIONS.labels(*key), cold_starts=COLD_STARTS.labels(*labels),
            wait=WAIT_SECONDS.labels(*labels), init=INIT_SECONDS.labels(*labels),
            duration=DURATION_SECONDS.labels(*labels), size=RESPONSE_BYTES.labels(*labels),
            memory=MEMORY.labels(*labels), status=tuple(STATUS.labels(*labels, word) for word in STATUS_IDS))
        _series[key] = series
    return series


def observe_activation(record: Activation) -> None:
    """Count one finished activation from its record (docs/openwhisk.md §2.7): an annotation walk and a few
    increments."""
    path = kind = wait_ms = None      # no waitTime: a record the controller wrote for a forced activation
    init_ms = 0
    initialized = False               # an initTime annotation, even of 0 ms (an /init under a millisecond)
    memory: Any = ""
    for annotation in record.annotations:
        key = annotation.get("key")
        if key == "path":
            path = annotation.get("value")
        elif key == "kind":
            kind = annotation.get("value")
        elif key == "waitTime":
            wait_ms = annotation.get("value") or 0
        elif key == "initTime":
            init_ms = annotation.get("value") or 0
            initialized = True
        elif key == "limits":
            memory = (annotation.get("value") or {}).get("memory", "")
    initiator = record.namespace
    if not isinstance(path, str) or "/" not in path:
        path = f"{initiator}/{record.name}"
    namespace, _, action = path.partition("/")
    series = _series_for(namespace, initiator, action, kind or "unknown", str(memory))
    series.activations.inc()
    if initialized:                   # OpenWhisk's isColdStart: any init, prewarmed containers included
        series.cold_starts.inc()
        series.init.observe(init_ms / 1000)
    if wait_ms is not None:
        series.wait.observe(wait_ms / 1000)
    duration = record.duration if record.duration is not None else record.end - record.start
    series.duration.observe(max(duration, 0) / 1000)
    series.status[record.response.status_code].inc()
    if record.response.size is not None:
        series.size.observe(record.response.size)
    if memory != "":
        series.memory.set(memory)


# The labelled child of each (metric, one label value) seen, for the counters every invoke bumps: `labels()` costs
# ~0.3 us a call, a lookup here a tenth of that. Bounded by the values: the pool's kinds of start, the balancer's
# outcomes.
_children: dict[tuple[LoopCounter, str], Any] = {}


def _child(metric: LoopCounter, value: str) -> Any:
    key = (metric, value)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(value)
    return child


def observe_container_start(start: str) -> None:
    """How the pool got the container of one run: RunResult.container_start (cold, prewarmed, warmed, ...)."""
    _child(CONTAINER_STARTS, start).inc()


def observe_throttle(namespace: str, limit: str) -> None:
    """A rejected invocation: `limit` is "concurrent" (ConcurrentRateLimit) or "timed" (TimedRateLimit)."""
    (LIMIT_CONCURRENT if limit == "concurrent" else LIMIT_TIMED).labels(namespace).inc()


def observe_completion(outcome: str) -> None:
    """The balancer closed an activation: success | system_error | timeout (forced) | lost (forced: its invoker went
    silent) | stopped (forced: this controller stopped) | discarded."""
    _child(COMPLETIONS, outcome).inc()


def observe_overload(partition: str) -> None:
    """The sharding balancer found no invoker of the partition (managed | blackbox) with room, and forced one."""
    _child(OVERLOADS, partition).inc()


# --- store and bus --------------------------------------------------------------------------------------------------

class Instrumented:
    """A store or bus with every coroutine method timed; everything else passes through untouched."""

    def __init__(self, target: Any, port: str) -> None:
        self._target = target
        self._port = port

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not inspect.iscoroutinefunction(attr):
            return attr                                  # properties and async generators: read each time
        seconds = BACKEND_SECONDS.labels(self._port, name)
        port = self._port

        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await attr(*args, **kwargs)
            except Exception as exc:
                BACKEND_ERRORS.labels(port, name, type(exc).__name__).inc()
                raise
            finally:
                seconds.observe(time.perf_counter() - start)

        self.__dict__[name] = timed                      # wrapped once per method
        return timed

    def __repr__(self) -> str:
        return f"Instrumented({self._target!r}, port={self._port!r})"


def instrument(target: Any, port: str) -> Any:
    """Wrap an opened store ("store") or bus ("bus") so that each call is timed and its errors counted."""
    return Instrumented(target, port)


# --- states read at scrape time -------------------------------------------------------------------------------------

POOL_STATES = ("starting", "prewarmed", "cold", "warming", "busy", "ready", "paused")


@dataclass(frozen=True, slots=True)
class PoolState:
    """An invoker's container pool (docs/openwhisk.md §7.2). `containers`: state -> count (POOL_STATES,
    ContainerPool.stats)."""

    containers: Mapping[str, int] = field(default_factory=dict)
    memory_used_mb: int = 0
    memory_limit_mb: int = 0
    buffered: int = 0                 # runs waiting for room in the pool
    prewarms_expired: int = 0         # prewarms removed past their ttl since start (a counter)

    @classmethod
    def of(cls, stats: PoolState | Mapping[str, Any]) -> PoolState:
        """A PoolState, or ContainerPool.stats()'s dict (containers, memory_used_mb, memory_mb, buffered,
        prewarms_expired)."""
        if isinstance(stats, PoolState):
            return stats
        return cls(containers=stats.get("containers") or {}, memory_used_mb=stats.get("memory_used_mb", 0),
                   memory_limit_mb=stats.get("memory_mb", 0), buffered=stats.get("buffered", 0),
                   prewarms_expired=stats.get("prewarms_expired", 0))


@dataclass(frozen=True, slots=True)
class BalancerState:
    """A controller's balancer (docs/openwhisk.md §5.5, §6.4). `invokers`: health (up, unhealthy, unresponsive, down) ->
    count."""

    invokers: Mapping[str, int] = field(default_factory=dict)
    in_flight: int = 0
    in_flight_memory_mb: int = 0
    forced_total: int = 0             # completions forced since start: the ack timeout, or a silent invoker
    health: Mapping[str, str] = field(default_factory=dict)   # invoker name -> its health, for a per-invoker gauge
    controllers: int = 1              # how many controllers it sees sharing the invokers

    @classmethod
    def of(cls, balancer: LoadBalancer) -> BalancerState:
        """Read a balancer through its port: `invokers()` ({"invoker0": "up", ...}) and the entries in flight."""
        invokers: dict[str, int] = {}
        health = balancer.invokers()
        for state in health.values():
            invokers[state] = invokers.get(state, 0) + 1
        entries = balancer.entries()
        return cls(invokers=invokers, in_flight=len(entries), in_flight_memory_mb=sum(e.memory_mb for e in entries),
                   forced_total=balancer.forced_total, health=dict(health), controllers=balancer.controllers())


class _Watched(Collector):
    def __init__(self) -> None:
        self.pools: list[Callable[[], PoolState]] = []
        self.balancers: list[Callable[[], BalancerState]] = []
        self.buses: list[Callable[[], bool]] = []

    def _read(self, readers: list[Callable[[], Any]]) -> list[Any]:
        states = []
        for read in list(readers):
            try:
                states.append(read())
            except Exception as exc:      # a scrape must not fail because one reader did; the log says why
                log.warning("metrics.read.failed", reader=getattr(read, "__qualname__", repr(read)), error=repr(exc))
        return states

    def collect(self) -> Iterator[Any]:
        pools = [PoolState.of(state) for state in self._read(self.pools)]
        if pools:
            containers = GaugeMetricFamily("whisk_pool_containers", "Containers in the pool by state", labels=["state"])
            counts: dict[str, int] = dict.fromkeys(POOL_STATES, 0)
            for state in pools:
                for name, n in state.containers.items():
                    counts[name] = counts.get(name, 0) + n
            for name, n in counts.items():
                containers.add_metric([name], n)
            yield containers
            yield GaugeMetricFamily("whisk_pool_memory_used_bytes", "Memory of the pool's containers",
                                    value=sum(s.memory_used_mb for s in pools) * MB)
            yield GaugeMetricFamily("whisk_pool_memory_limit_bytes", "Memory the pool may give to containers",
                                    value=sum(s.memory_limit_mb for s in pools) * MB)
            yield GaugeMetricFamily("whisk_pool_buffered_runs", "Activations waiting for room in the pool",
                                    value=sum(s.buffered for s in pools))
            yield CounterMetricFamily("whisk_pool_prewarms_expired", "Prewarmed containers removed past their ttl",
                                      value=sum(s.prewarms_expired for s in pools))
        balancers = self._read(self.balancers)
        if balancers:
            invokers = GaugeMetricFamily("whisk_loadbalancer_invokers", "Invokers by health", labels=["state"])
            counts = {"up": 0, "unhealthy": 0, "unresponsive": 0, "down": 0}
            for state in balancers:
                for name, n in state.invokers.items():
                    counts[name] = counts.get(name, 0) + n
            for name, n in counts.items():
                invokers.add_metric([name], n)
            yield invokers
            # One series per invoker the balancer knows (a cluster's size, so bounded): an alert can name the one
            # that went down. 1 = up, 0 = unhealthy, unresponsive or down.
            up = GaugeMetricFamily("whisk_loadbalancer_invoker_up", "An invoker is up (1) or not (0), as the "
                                   "balancer sees it", labels=["invoker"])
            seen: dict[str, int] = {}
            for state in balancers:
                for name, health in state.health.items():
                    seen[name] = max(seen.get(name, 0), int(health == "up"))
            for name, n in sorted(seen.items()):
                up.add_metric([name], n)
            yield up
            yield GaugeMetricFamily("whisk_loadbalancer_activations_in_flight", "Activations awaiting completion",
                                    value=sum(s.in_flight for s in balancers))
            yield GaugeMetricFamily("whisk_loadbalancer_memory_in_flight_bytes",
                                    "Memory reserved for activations awaiting completion",
                                    value=sum(s.in_flight_memory_mb for s in balancers) * MB)
            # Each controller places in its share of every invoker's memory (1 / this): one that counts too few
            # controllers (discovery away) hands out more than its share, and the invokers are overloaded.
            yield GaugeMetricFamily("whisk_loadbalancer_controllers", "Controllers sharing the invokers' memory and "
                                    "each namespace's throttles, as this one sees them",
                                    value=max(s.controllers for s in balancers))
            yield CounterMetricFamily("whisk_loadbalancer_completions_forced",
                                      "Activations force-completed with no completion ack: the ack timeout "
                                      "(docs/openwhisk.md §5.5) or a silent invoker",
                                      value=sum(s.forced_total for s in balancers))
        buses = list(self.buses)
        if buses:
            # One per process: 0 as soon as any of its parts (the balancer, the invoker) finds the bus away. A reader
            # that failed (logged by `_read`) cannot say that it answers.
            answers = self._read(buses)
            yield GaugeMetricFamily("whisk_bus_up", "The message bus answers (1) or not (0), as this process sees it",
                                    value=int(len(answers) == len(buses) and all(answers)))


_watched = _Watched()
REGISTRY.register(_watched)


def _watch(readers: list[Callable[[], Any]], read: Callable[[], Any]) -> Callable[[], None]:
    readers.append(read)

    def unwatch() -> None:
        if read in readers:
            readers.remove(read)

    return unwatch


def watch_pool(read: Callable[[], PoolState | Mapping[str, Any]]) -> Callable[[], None]:
    """Export a pool's state, read at each scrape (on the event loop): `watch_pool(pool.stats)`. Returns the call
    that stops it."""
    return _watch(_watched.pools, read)


def watch_bus(read: Callable[[], bool]) -> Callable[[], None]:
    """Export whether the bus answers, read at each scrape: the sharding balancer's `bus_answers` (its bus check) and
    the invoker's (its pings and acks). Returns the call that stops it."""
    return _watch(_watched.buses, read)


def watch_balancer(read: Callable[[], BalancerState]) -> Callable[[], None]:
    """Export a balancer's state, read at each scrape (on the event loop):
    `watch_balancer(lambda: BalancerState.of(balancer))`. Returns the call that stops it."""
    return _watch(_watched.balancers, read)
