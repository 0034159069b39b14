"""s3:// URI parsing and joining: the names every artifact goes by."""

import pytest

from unipic.errors import StorageError
from unipic.storage import S3Uri, is_s3_uri, join_uri, parse_s3_uri


@pytest.mark.parametrize(
    "uri,bucket,key",
    [
        ("s3://unipic-data/shapes/v1/", "unipic-data", "shapes/v1/"),
        ("s3://unipic-data/a.txt", "unipic-data", "a.txt"),
        ("s3://unipic-data", "unipic-data", ""),
        ("s3://unipic-data/", "unipic-data", ""),
        ("s3://my.bucket-1/x/y z.json", "my.bucket-1", "x/y z.json"),
    ],
)
def test_parse(uri, bucket, key):
    u = parse_s3_uri(uri)
    assert (u.bucket, u.key) == (bucket, key)


@pytest.mark.parametrize(
    "bad,fragment",
    [
        ("/local/path", "not an s3:// URI"),
        ("http://host/b/k", "not an s3:// URI"),
        ("s3:///key", "no bucket"),
        ("s3://UPPER/key", "not a valid bucket name"),
        ("s3://ab/key", "not a valid bucket name"),
        ("s3://bucket/a/../b", "'..'"),
        ("s3://bucket/a//b", "empty path segment"),
    ],
)
def test_parse_rejects_with_reason(bad, fragment):
    with pytest.raises(StorageError) as exc:
        parse_s3_uri(bad)
    assert fragment in str(exc.value)


def test_prefix_and_str_roundtrip():
    u = parse_s3_uri("s3://unipic-data/shapes/v1")
    assert u.prefix == "shapes/v1/"
    assert str(u) == "s3://unipic-data/shapes/v1"
    assert S3Uri("unipic-data").prefix == ""
    assert u.child("index.parquet") == S3Uri("unipic-data", "shapes/v1/index.parquet")


@pytest.mark.parametrize(
    "base,parts,expected",
    [
        ("s3://b-1/x", ("y", "z.txt"), "s3://b-1/x/y/z.txt"),
        ("s3://b-1/x/", ("/y/", "/z.txt"), "s3://b-1/x/y/z.txt"),
        ("s3://b-1", ("a",), "s3://b-1/a"),
        ("s3://b-1/", ("a", "b/"), "s3://b-1/a/b/"),
        ("s3://b-1/x", ("",), "s3://b-1/x"),
        ("s3://b-1/x", ("sub\\win.txt",), "s3://b-1/x/sub/win.txt"),
    ],
)
def test_join(base, parts, expected):
    assert join_uri(base, *parts) == expected


def test_join_rejects_escape():
    with pytest.raises(StorageError):
        join_uri("s3://b-1/x", "../y")


def test_is_s3_uri():
    assert is_s3_uri("s3://b-1/x")
    assert not is_s3_uri("data/x")
    from pathlib import Path

    assert not is_s3_uri(Path("s3:/b-1/x"))
