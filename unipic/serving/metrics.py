"""Prometheus metrics of the predictor, served on KServe's `/metrics` next to its own request histograms.

Created once per process (the default registry refuses duplicates); every series carries the model name.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

REQUEST_LATENCY = Histogram(
    "unipic_serve_request_seconds",
    "Time from accepting an instance to its encoded result, per task.",
    ["model_name", "task"],
    buckets=LATENCY_BUCKETS,
)
QUEUE_WAIT = Histogram(
    "unipic_serve_queue_wait_seconds",
    "Time an instance waited in the micro-batcher before its batch started.",
    ["model_name"],
    buckets=LATENCY_BUCKETS,
)
QUEUE_DEPTH = Gauge("unipic_serve_queue_depth", "Instances waiting for a batch.", ["model_name"])
BATCH_SIZE = Histogram(
    "unipic_serve_batch_images",
    "Images (or answers) computed by one pipeline call.",
    ["model_name"],
    buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64),
)
REQUESTS = Counter("unipic_serve_instances_total", "Instances by outcome.", ["model_name", "outcome"])
