"""Fixtures for the monitoring tests: a live simulated service and a real Prometheus on it."""

from tests.monitoring.realprom import live_service, real_prometheus

__all__ = ["live_service", "real_prometheus"]
