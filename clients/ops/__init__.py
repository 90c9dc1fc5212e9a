"""Operator tools, installed as console scripts with the base install.

- ``gmai-health-check`` (``health_check``): exit 0 when a gRPC server reports SERVING on
  grpc.health.v1 (the images' HEALTHCHECK, the Kubernetes exec probe, systemd).
- ``gmai-eval-backup`` (``backup``): a consistent, integrity-checked snapshot of a live
  evaluator database (standard library only).
"""
