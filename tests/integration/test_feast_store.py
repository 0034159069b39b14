"""Feast with the project's definitions: write signals, apply, materialize, read online; historical retrieval
is joined back onto the caller's rows (Feast drops rows outside the TTL and reorders); training-set selection
applies the configured bounds. The S3 offline store runs against a real SeaweedFS."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from unipic.config.curation import FeaturesConfig
from unipic.config.store import StoreConfig
from unipic.errors import DataError
from unipic.features import FeatureStoreClient, select_training_set

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_curation_gate import clean_index  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # feast import alone takes ~10 s here
NOW = datetime.now(timezone.utc)


def test_local_feast_roundtrip_ttl_order_and_selection(tmp_path: Path) -> None:
    cfg = FeaturesConfig(state_dir=tmp_path / "features", ttl_days=7,
                         selection={"agreement": [0.5, None], "sharpness": [None, 400.0]})
    client = FeatureStoreClient(cfg)
    with pytest.raises(DataError, match="no curation features yet"):
        client.online(["s1"])
    index = clean_index(40)
    client.write_signals(index.iloc[:20], "old", event_time=NOW - timedelta(days=30))  # outside the TTL
    client.write_signals(index.iloc[20:], "new", event_time=NOW - timedelta(hours=1))
    client.apply()
    client.materialize(start=NOW - timedelta(days=60))
    online = client.online(["s25", "unknown"])
    assert online[0]["sharpness"] == pytest.approx(index.loc[25, "sharpness"], rel=1e-5)
    assert online[0]["text_words"] == 2 and online[0]["task"] == index.loc[25, "task"]
    assert online[1]["sharpness"] is None
    ids = ["s39", "s3", "nope", "s21", "s20"]
    ent = pd.DataFrame({"sample_id": ids, "event_timestamp": pd.Timestamp(NOW)})
    got = client.historical(ent)
    assert list(got["sample_id"]) == ids  # input order kept, dropped rows kept as NaN
    assert list(got["has_features"]) == [True, False, False, True, True]
    assert got.loc[0, "exposure"] == pytest.approx(index.loc[39, "exposure"], rel=1e-5)
    selected, dropped = select_training_set(cfg, list(index["sample_id"]), client=client)
    new = index.iloc[20:]
    want = new[(new["agreement"] >= 0.5) & (new["sharpness"] <= 400.0)]["sample_id"].tolist()
    assert selected["sample_id"].tolist() == want
    assert dropped["no_features"] == 20
    assert dropped["agreement"] == int((new["agreement"] < 0.5).sum())


def test_cluster_style_config_and_s3_offline_store(tmp_path: Path, store_config: StoreConfig) -> None:
    from unipic.storage import ObjectStore

    ObjectStore(store_config).ensure_bucket(store_config.buckets.data)
    uri = f"s3://{store_config.buckets.data}/tests/feast-{tmp_path.name}"
    redis = FeatureStoreClient(FeaturesConfig(offline="s3", offline_uri=uri, online="redis",
                                              redis_connection="redis.feast:6379"), store_config)
    conf = redis.repo_config_dict()
    assert conf["online_store"] == {"type": "redis", "connection_string": "redis.feast:6379"}
    assert conf["registry"] == f"{uri}/registry.db" and redis.source_path == f"{uri}/signals"
    # S3 parquet offline store for real (online store: sqlite, as no Redis runs here)
    cfg = FeaturesConfig(offline="s3", offline_uri=uri, state_dir=tmp_path / "features")
    client = FeatureStoreClient(cfg, store_config)
    client.repo_config_dict = lambda: {**FeatureStoreClient.repo_config_dict(client),  # type: ignore[method-assign]
                                       "registry": str(tmp_path / "registry.db")}
    index = clean_index(12)
    part = client.write_signals(index, "a", event_time=NOW - timedelta(minutes=5))
    assert part.startswith(uri) and ObjectStore(store_config).exists(part)
    client.apply()
    ent = pd.DataFrame({"sample_id": ["s5", "s1"], "event_timestamp": pd.Timestamp(NOW)})
    got = client.historical(ent)
    assert got["has_features"].all()
    assert got.loc[1, "colourfulness"] == pytest.approx(index.loc[1, "colourfulness"], rel=1e-5)
