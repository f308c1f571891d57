"""What an operator sees of a running gateway: logs, readiness and Prometheus metrics."""
