"""whisk/loopmetrics.py: the same series as prometheus-client's own metrics, byte for byte in the text exposition,
for the same changes."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from whisk.loopmetrics import LoopCounter, LoopGauge, LoopHistogram

BUCKETS = (0.001, 0.005, 0.01, 0.5, 1, 75)
# Below every bound, on a bound, between bounds, on the last bound, past it, negative, zero.
VALUES = (0.0002, 0.001, 0.005, 0.0051, 0.3, 75, 75.5, 1e9, -1, 0)


def text(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


@pytest.fixture(autouse=True)
def no_created_series(monkeypatch):
    # whisk turns them off (whisk/metrics.py): the library's metrics here must not print them either.
    from prometheus_client import metrics
    monkeypatch.setattr(metrics, "_use_created", False)


def test_counters_gauges_and_histograms_print_as_the_librarys():
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    counters = (LoopCounter("t_requests", "Requests", ("method", "status"), registry=ours),
                Counter("t_requests", "Requests", ("method", "status"), registry=theirs))
    gauges = (LoopGauge("t_status", "A gauge that only goes up", ("word",), registry=ours),
              Gauge("t_status", "A gauge that only goes up", ("word",), registry=theirs))
    histograms = (LoopHistogram("t_seconds", "Latency", ("route",), buckets=BUCKETS, registry=ours),
                  Histogram("t_seconds", "Latency", ("route",), buckets=BUCKETS, registry=theirs))
    unused = (LoopCounter("t_unused", "Never changed", ("x",), registry=ours),
              Counter("t_unused", "Never changed", ("x",), registry=theirs))
    assert unused
    for counter in counters:
        counter.labels("POST", 200).inc()
        counter.labels("POST", 200).inc(2.5)
        counter.labels("GET", 404).inc()
    for gauge in gauges:
        gauge.labels("success").inc()
        gauge.labels("memory").set(256)
    for histogram in histograms:
        for value in VALUES:
            histogram.labels("/a").observe(value)
        histogram.labels("/b").observe(0.02)
    assert text(ours) == text(theirs)


def test_a_value_on_a_bound_counts_in_that_bucket():
    registry = CollectorRegistry()
    histogram = LoopHistogram("t_sizes", "Sizes", ("k",), buckets=(64, 256), registry=registry)
    for value in (64, 65, 256, 257):
        histogram.labels("a").observe(value)
    lines = [line for line in text(registry).splitlines() if line.startswith("t_sizes")]
    assert lines == ['t_sizes_bucket{k="a",le="64.0"} 1.0', 't_sizes_bucket{k="a",le="256.0"} 3.0',
                     't_sizes_bucket{k="a",le="+Inf"} 4.0', 't_sizes_count{k="a"} 4.0', 't_sizes_sum{k="a"} 642.0']


def test_mistakes_are_refused_as_by_the_library():
    registry = CollectorRegistry()
    counter = LoopCounter("t_calls", "Calls", ("op",), registry=registry)
    with pytest.raises(ValueError):
        counter.labels("get").inc(-1)
    with pytest.raises(ValueError):
        counter.labels("get", "extra")
    with pytest.raises(ValueError):              # the registry refuses a second family of the same name
        LoopCounter("t_calls", "Calls again", ("op",), registry=registry)
