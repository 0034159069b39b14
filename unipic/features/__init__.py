"""Feast feature store for per-sample curation signals (entity: sample_id). Feast is imported lazily."""

from unipic.features.store import FeatureStoreClient, select_training_set, signal_frame

__all__ = ["FeatureStoreClient", "select_training_set", "signal_frame"]
