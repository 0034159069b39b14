"""Feast for curation signals: write them, apply the definitions, materialize, read online and historically.

Locally: file (dask) offline store over a parquet folder + SQLite online store under `features.state_dir`.
In a cluster: the same parquet folder on S3 (MinIO) + Redis. Feast imports torch, so it is imported inside
functions only. Retrieval gotchas (notes/feas_ops.md §4): historical retrieval drops entity rows without a
feature row inside the TTL and reorders rows, so results are always joined back onto the caller's frame.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from unipic.config.curation import FeaturesConfig
from unipic.config.store import StoreConfig
from unipic.errors import ConfigError, DataError
from unipic.features.definitions import (
    FEATURE_SERVICE,
    IMAGE_FEATURES,
    TEXT_FEATURES,
    build_definitions,
    feature_refs,
)
from unipic.logging import get_logger

log = get_logger(__name__)
FEATURE_COLUMNS = [*IMAGE_FEATURES, *TEXT_FEATURES]


def signal_frame(index: pd.DataFrame, event_time: datetime) -> pd.DataFrame:
    """One feature row per curated sample, from the curated index."""
    text = index["text"].astype(str)
    df = pd.DataFrame({
        "sample_id": index["sample_id"].astype(str),
        "event_timestamp": pd.Timestamp(event_time),
        "created": pd.Timestamp(datetime.now(timezone.utc)),
        "text_chars": text.str.len().astype("int64"),
        "text_words": text.str.split().str.len().astype("int64"),
    })
    for col in ("sharpness", "colourfulness", "exposure", "clipped_fraction", "change_ratio", "agreement"):
        df[col] = index[col].astype("float32").to_numpy()
    for col in ("width", "height"):
        df[col] = index[col].astype("int64").to_numpy()
    for col in ("task", "kind"):
        df[col] = index[col].astype(str).to_numpy()
    return df


class FeatureStoreClient:
    """The one way the project talks to Feast; built from `FeaturesConfig` (+ `StoreConfig` for S3)."""

    def __init__(self, cfg: FeaturesConfig, store_cfg: StoreConfig | None = None) -> None:
        if cfg.offline == "s3" and store_cfg is None:
            raise ConfigError("features.offline=s3 needs the store config (endpoint and credentials)")
        self.cfg = cfg
        self.store_cfg = store_cfg
        self.state_dir = Path(cfg.state_dir).resolve()
        self._fs: Any = None

    @property
    def source_path(self) -> str:
        if self.cfg.offline == "s3":
            return f"{str(self.cfg.offline_uri).rstrip('/')}/signals"
        return str(self.state_dir / "signals")

    def repo_config_dict(self) -> dict[str, Any]:
        """The feature_store.yaml content for this config (also written into data/feature_repo/)."""
        online: dict[str, Any]
        if self.cfg.online == "redis":
            online = {"type": "redis", "connection_string": self.cfg.redis_connection}
        else:
            online = {"type": "sqlite", "path": str(self.state_dir / "online.db")}
        registry = (f"{str(self.cfg.offline_uri).rstrip('/')}/registry.db" if self.cfg.offline == "s3"
                    else str(self.state_dir / "registry.db"))
        return {"project": self.cfg.project, "provider": "local", "registry": registry,
                "offline_store": {"type": "file"}, "online_store": online,
                "entity_key_serialization_version": 3}

    def _s3_env(self) -> None:
        if self.cfg.offline == "s3" and self.store_cfg is not None:
            os.environ.setdefault("AWS_ACCESS_KEY_ID", self.store_cfg.access_key.get_secret_value())
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", self.store_cfg.secret_key.get_secret_value())
            os.environ.setdefault("FEAST_S3_ENDPOINT_URL", self.store_cfg.endpoint_url)

    @property
    def store(self) -> Any:
        if self._fs is None:
            from feast import FeatureStore, RepoConfig

            self._s3_env()
            self.state_dir.mkdir(parents=True, exist_ok=True)
            conf = RepoConfig(repo_path=str(self.state_dir), **self.repo_config_dict())
            self._fs = FeatureStore(config=conf)
        return self._fs

    def definitions(self) -> list[Any]:
        endpoint = self.store_cfg.endpoint_url if self.cfg.offline == "s3" and self.store_cfg else None
        return build_definitions(self.source_path, self.cfg.ttl_days, endpoint)

    def apply(self) -> None:
        self.store.apply(self.definitions())

    def write_signals(self, index: pd.DataFrame, part: str, event_time: datetime | None = None) -> str:
        """Write one parquet part (atomic: temp name, then rename / upload) and return its location."""
        event_time = event_time or datetime.now(timezone.utc)
        df = signal_frame(index, event_time)
        name = f"part-{part}.parquet"
        if self.cfg.offline == "s3":
            import io

            from unipic.storage import ObjectStore

            buf = io.BytesIO()
            df.to_parquet(buf, index=False)
            uri = f"{self.source_path}/{name}"
            ObjectStore(self.store_cfg).write_bytes(uri, buf.getvalue())  # type: ignore[arg-type]
            return uri
        folder = Path(self.source_path)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{name}.tmp"
        df.to_parquet(tmp, index=False)
        os.replace(tmp, folder / name)
        return str(folder / name)

    def materialize(self, start: datetime | None = None, end: datetime | None = None) -> None:
        end = end or datetime.now(timezone.utc) + timedelta(seconds=1)
        start = start or end - timedelta(days=self.cfg.ttl_days)
        self.store.materialize(start_date=start, end_date=end)

    def online(self, sample_ids: list[str]) -> list[dict[str, Any]]:
        """Latest features per sample from the online store; unknown ids come back with None values."""
        from feast.errors import FeastObjectNotFoundException

        try:
            res = self.store.get_online_features(features=feature_refs(),
                                                 entity_rows=[{"sample_id": s} for s in sample_ids]).to_dict()
        except FeastObjectNotFoundException as exc:
            raise DataError(f"the feature store in {self.state_dir} has no curation features yet ({exc}); "
                            "curate a dataset first (`unipic data curate`): it applies and materializes them"
                            ) from None
        return [{k: res[k][i] for k in res} for i in range(len(sample_ids))]

    def historical(self, entity_df: pd.DataFrame) -> pd.DataFrame:
        """Point-in-time features for `entity_df` (sample_id, event_timestamp), joined back in its order.

        Rows Feast drops (no feature row inside the TTL) come back with NaN features and `has_features` False.
        """
        if "sample_id" not in entity_df or "event_timestamp" not in entity_df:
            raise DataError("entity_df needs columns sample_id and event_timestamp")
        ent = entity_df[["sample_id", "event_timestamp"]].copy()
        ent["_row"] = range(len(ent))
        got = self.store.get_historical_features(
            entity_df=ent, features=self.store.get_feature_service(FEATURE_SERVICE)).to_df()
        got = got.drop(columns=[c for c in ("sample_id", "event_timestamp") if c in got])
        got = got.drop_duplicates("_row")
        out = entity_df.reset_index(drop=True).copy()
        out["_row"] = range(len(out))
        cols = [c for c in FEATURE_COLUMNS if c in got and c not in out]
        out = out.merge(got[["_row", *cols]], on="_row", how="left")
        found = set(got.loc[got["sharpness"].notna(), "_row"]) if "sharpness" in got else set()
        out["has_features"] = out["_row"].isin(found)
        return out.drop(columns="_row")


def select_training_set(cfg: FeaturesConfig, sample_ids: list[str] | pd.Series,
                        as_of: datetime | None = None, store_cfg: StoreConfig | None = None,
                        client: FeatureStoreClient | None = None) -> tuple[pd.DataFrame, dict[str, int]]:
    """The later stages' training set: historical retrieval of every sample's signals, then the
    `features.selection` bounds. Returns (selected rows in input order, counts of why rows were dropped)."""
    client = client or FeatureStoreClient(cfg, store_cfg)
    as_of = as_of or datetime.now(timezone.utc)
    ent = pd.DataFrame({"sample_id": list(sample_ids), "event_timestamp": pd.Timestamp(as_of)})
    feats = client.historical(ent)
    keep = feats["has_features"].copy()
    dropped = {"no_features": int((~keep).sum())}
    for name, (lo, hi) in cfg.selection.items():
        if name not in feats:
            known = ", ".join(FEATURE_COLUMNS)
            raise ConfigError(f"features.selection.{name}: no such feature; known: {known}")
        col = feats[name]
        ok = col.notna()
        if lo is not None:
            ok &= col >= lo
        if hi is not None:
            ok &= col <= hi
        dropped[name] = int((keep & ~ok).sum())
        keep &= ok
    return feats[keep].reset_index(drop=True), dropped
