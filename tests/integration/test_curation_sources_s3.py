"""WebDataset shards under an s3:// prefix stream one shard at a time and match the local copy sample for sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from unipic.config import load_config
from unipic.config.store import StoreConfig
from unipic.data.curation.sources import ShardSource, open_source
from unipic.errors import DataError

pytestmark = pytest.mark.integration


def test_s3_shards_stream_like_local_ones(tmp_path: Path, store_config: StoreConfig, s3_prefix: str) -> None:
    from unipic.data.generate import build_dataset
    from unipic.storage import ObjectStore

    cfg = load_config("ci", ["shapes.n_t2i=12", "shapes.n_edit=6", "shapes.shard_size=5"])
    build_dataset(cfg.shapes, tmp_path / "ds")
    store = ObjectStore(store_config)
    store.publish_dir(tmp_path / "ds", f"{s3_prefix}ds")
    local = list(ShardSource(tmp_path / "ds"))
    remote = list(open_source(f"{s3_prefix}ds", store_config))
    assert len(local) == 18
    assert [(s.sample_id, s.image, s.target, s.text) for s in remote] == \
        [(s.sample_id, s.image, s.target, s.text) for s in local]
    assert remote[0].origin.startswith(s3_prefix)
    with pytest.raises(DataError, match="no WebDataset shards"):
        list(ShardSource(f"{s3_prefix}nothing-here", store_config))
