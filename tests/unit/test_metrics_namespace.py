"""Metrics always have a namespace: a flush without POWERTOOLS_METRICS_NAMESPACE set must not raise."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailroom import observability


@pytest.fixture
def fresh_metrics(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    observability.metrics.cache_clear()
    yield
    observability.metrics().clear_metrics()
    observability.metrics.cache_clear()


def test_recorded_metrics_flush_without_a_namespace_in_the_environment(fresh_metrics: None) -> None:
    from aws_lambda_powertools.metrics import MetricUnit

    recorded = observability.metrics()
    for i in range(101):  # past 100, Powertools serializes on its own
        recorded.add_metric(name=f"bench_{i}", unit=MetricUnit.Count, value=1)
    observability.flush_metrics()
    assert recorded.namespace == observability.METRICS_NAMESPACE


def test_the_environment_still_names_the_namespace(
    monkeypatch: pytest.MonkeyPatch, fresh_metrics: None
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Elsewhere")
    assert observability.metrics().namespace == "Elsewhere"
