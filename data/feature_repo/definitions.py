"""Feature definitions for `feast apply` run in this folder (the library applies the same objects in code).

Set UNIPIC_FEATURES_SOURCE to the signal parquet folder (s3://... in a cluster); the default is the local one.
"""

import os

from unipic.features.definitions import build_definitions

sample, image_quality, text_signals, curation_v1 = build_definitions(
    os.environ.get("UNIPIC_FEATURES_SOURCE", os.path.abspath("../../.unipic/features/signals")),
    ttl_days=int(os.environ.get("UNIPIC_FEATURES_TTL_DAYS", "3650")),
    s3_endpoint=os.environ.get("FEAST_S3_ENDPOINT_URL"),
)
