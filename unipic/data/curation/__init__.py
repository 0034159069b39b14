"""Data curation (issue #3): sources → composable filters → curated shards + index; gated, featurised,
versioned.

    curator = Curator(cfg.curation)
    kept = list(curator.run(FolderSource("imgs/", "imgs/captions.jsonl")))
    curator.report()      # counts in/out, rejections by reason
"""

from unipic.data.curation.base import Filter
from unipic.data.curation.pipeline import CurationReport, Curator, default_filters
from unipic.data.curation.sample import Sample

__all__ = ["CurationReport", "Curator", "Filter", "Sample", "default_filters"]
