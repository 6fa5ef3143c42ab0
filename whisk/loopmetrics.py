"""Counters, gauges and histograms for the series every invoke touches, kept as plain numbers.

prometheus-client's metrics take a lock on every change (a histogram's observe takes two, and walks its buckets in
Python), so that threads may share them. whisk changes these series only on its event loop thread (HTTP middleware,
invoker, balancer, store and bus wrappers are all coroutines or callbacks of it), and `GET /metrics` reads them on
the same thread, so nothing can interleave: a change here is an addition to a float. Each family registers itself
as a collector in prometheus-client's registry and prints exactly as the library's own metric would
(tests/test_loopmetrics.py compares the two); what it saves is in docs/performance.md, eleventh session.

A family's `labels(*values)` gives its child for those label values (made on first use, kept); children have the
library's methods: `inc` (counters and gauges), `set` (gauges), `observe` (histograms).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

INF = float("inf")


class CounterValue:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        self.value += amount


class GaugeValue:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def set(self, value: float) -> None:
        self.value = float(value)


class HistogramValue:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds                  # upper bounds, +Inf last
        self.counts = [0] * len(bounds)       # per bucket, not cumulative
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        self.counts[bisect_left(self.bounds, amount)] += 1     # the first bucket whose bound is >= amount
        self.sum += amount


class _Family(Collector):
    """Counters and gauges as they are; a histogram overrides how a child is made and printed."""

    family: type[Metric]
    value: type[CounterValue] | type[GaugeValue]

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str],
                 registry: CollectorRegistry | None = REGISTRY) -> None:
        self._name = name
        self._documentation = documentation
        self._labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], Any] = {}
        if registry is not None:
            registry.register(self)

    def _child(self) -> Any:
        return self.value()

    def _add(self, family: Any, labels: list[str], child: Any) -> None:
        family.add_metric(labels, child.value)

    def labels(self, *values: object) -> Any:
        if len(values) != len(self._labelnames):
            raise ValueError(f"{self._name} takes {len(self._labelnames)} label values, not {len(values)}")
        key = tuple(str(value) for value in values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._child()
        return child

    def _empty(self) -> Metric:
        return self.family(self._name, self._documentation, labels=self._labelnames)    # type: ignore[call-arg]

    def describe(self) -> Iterable[Metric]:
        return [self._empty()]

    def collect(self) -> Iterable[Metric]:
        family = self._empty()
        for key, child in list(self._children.items()):
            self._add(family, list(key), child)
        return [family]


class LoopCounter(_Family):
    family = CounterMetricFamily
    value = CounterValue


class LoopGauge(_Family):
    family = GaugeMetricFamily
    value = GaugeValue


class LoopHistogram(_Family):
    family = HistogramMetricFamily

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], *, buckets: Sequence[float],
                 registry: CollectorRegistry | None = REGISTRY) -> None:
        bounds = tuple(sorted(float(b) for b in buckets))
        if not bounds or bounds[-1] != INF:
            bounds += (INF,)
        self._bounds = bounds
        self._bound_texts = tuple(floatToGoString(b) for b in bounds)
        super().__init__(name, documentation, labelnames, registry)

    def _child(self) -> HistogramValue:
        return HistogramValue(self._bounds)

    def _add(self, family: Any, labels: list[str], child: Any) -> None:
        buckets = []
        total = 0
        for text, count in zip(self._bound_texts, child.counts):
            total += count
            buckets.append((text, float(total)))
        family.add_metric(labels, buckets, child.sum)
