"""Bad input on the real dataset format: ShapesWorld shards with 5 % corrupt images, duplicate keys, missing
captions and NaN fields. Those rows are rejected and counted by reason; everything else is curated."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from unipic.config import load_config
from unipic.data.curation.local import curate_to_dir
from unipic.data.curation.sources import ShardSource
from unipic.data.shards import iter_shard


def rewrite_shard(path: Path, mutate) -> None:
    """Rewrite a tar shard member by member through `mutate(i, key, files) -> list[(key, files)]`."""
    records = list(iter_shard(path))
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for i, rec in enumerate(records):
            for key, files in mutate(i, rec.key, dict(rec.files)):
                for ext, data in files.items():
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))


def test_five_percent_corrupt_duplicates_missing_captions_and_nans(tmp_path: Path) -> None:
    from unipic.data.generate import build_dataset

    cfg = load_config("ci", ["shapes.n_t2i=100", "shapes.n_edit=0", "shapes.shard_size=100",
                             "curation.gate.min_rows=1"])
    build_dataset(cfg.shapes, tmp_path / "ds", kind="t2i")
    shard = tmp_path / "ds/shards/t2i-000000.tar"
    corrupt = set(range(0, 100, 20))  # 5 %
    duplicated, no_caption, nan_caption, nan_task = {7, 33}, {11, 51}, {13}, {17}

    def mutate(i: int, key: str, files: dict[str, bytes]):
        meta = json.loads(files["json"])
        if i in corrupt:
            files["png"] = files["png"][: len(files["png"]) // 2] if i % 40 else b""
        if i in no_caption:
            meta.pop("caption")
        if i in nan_caption:
            meta["caption"] = float("nan")
        if i in nan_task:
            meta["task"] = float("nan")
        files["json"] = json.dumps(meta).encode()  # json writes NaN as a bare NaN token
        out = [(key, files)]
        if i in duplicated:  # the same key again, with another image
            out.append((key, {"png": files["png"], "json": files["json"]}))
        return out

    rewrite_shard(shard, mutate)
    report, index = curate_to_dir(ShardSource(tmp_path / "ds"), cfg.curation, tmp_path / "out")
    rej = report.rejected
    assert rej.get("decode:truncated", 0) + rej.get("decode:zero_size", 0) == len(corrupt)
    assert rej.get("decode:zero_size") == 3  # rows 0, 40, 80
    assert rej.get("text:missing") == len(no_caption) + len(nan_caption)
    assert rej.get("source:duplicate_id") == len(duplicated)
    assert rej.get("source:bad_task") == len(nan_task)
    assert report.n_in == 100 + len(duplicated)
    curated = set(index["sample_id"])
    assert report.n_out == len(curated) == report.n_in - report.n_rejected
    bad = corrupt | no_caption | nan_caption | nan_task
    genuine_dups = sum(v for k, v in rej.items() if "dedup" in k or k.startswith("near"))
    assert report.n_out == 100 - len(bad) - genuine_dups  # everything else is curated
    assert "t2i-train-00000017" not in curated and "t2i-train-00000001" in curated
