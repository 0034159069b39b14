"""The Feast objects: one entity (sample_id) and two feature views over the curation signals.

`image_quality` holds what the pixels say, `text_signals` what the caption / instruction says and how well
image and text agree. Both read one parquet location written by the curation stage (a folder of part files,
one per curated dataset), so retrieval sees every dataset curated so far.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

IMAGE_FEATURES = {"sharpness": "f", "colourfulness": "f", "exposure": "f", "clipped_fraction": "f",
                  "change_ratio": "f", "width": "i", "height": "i"}
TEXT_FEATURES = {"agreement": "f", "text_chars": "i", "text_words": "i", "task": "s", "kind": "s"}
FEATURE_SERVICE = "curation_v1"
ENTITY = "sample"


def feature_refs() -> list[str]:
    return [f"image_quality:{n}" for n in IMAGE_FEATURES] + [f"text_signals:{n}" for n in TEXT_FEATURES]


def build_definitions(source_path: str, ttl_days: int, s3_endpoint: str | None = None) -> list[Any]:
    """Entity, sources, feature views and the feature service: for `store.apply` or a repo's definitions."""
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
    from feast.types import Float32, Int64, String

    types = {"f": Float32, "i": Int64, "s": String}
    sample = Entity(name=ENTITY, join_keys=["sample_id"], value_type=ValueType.STRING,
                    description="one curated sample (T2I image or edit triplet)")
    views = []
    for name, feats in (("image_quality", IMAGE_FEATURES), ("text_signals", TEXT_FEATURES)):
        src = FileSource(name=f"{name}_src", path=source_path, timestamp_field="event_timestamp",
                         created_timestamp_column="created", s3_endpoint_override=s3_endpoint)
        views.append(FeatureView(
            name=name, entities=[sample], ttl=timedelta(days=ttl_days), source=src, online=True,
            schema=[Field(name=n, dtype=types[t]) for n, t in feats.items()],
        ))
    service = FeatureService(name=FEATURE_SERVICE, features=list(views))
    return [sample, *views, service]
