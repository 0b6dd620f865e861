"""Telemetry sources: Prometheus, Jaeger, Tempo, Loki, the service graph and signals."""
