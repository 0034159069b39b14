"""The curation stage end to end: sources → filters → local dataset → GX gate → publish → Feast → DVC
version.

    out = run_curation(["shapes"], CurationInputs.from_config(cfg), work_dir=".unipic/runs/curate")
    out.metadata()   # flat strings for the KFP artifact: uri, manifest hash, DVC tag/rev/md5, counts

Nothing leaves the work dir before the gate passes. Publishing writes the manifest last; the default URI
(`curated/<hash of config + sources>`) makes a rerun after a failure land on the same prefix and finish it
(the store client withdraws a stale manifest first and removes leftovers). The DVC version is tagged only
after its push succeeded (`unipic.data.versioning`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from unipic.config.base import config_hash
from unipic.config.curation import CurationConfig, FeaturesConfig, RegistryConfig
from unipic.config.data import ShapesConfig
from unipic.config.store import StoreConfig
from unipic.data.curation.local import curate_to_dir
from unipic.data.curation.pipeline import CurationReport
from unipic.data.curation.sample import Sample
from unipic.data.curation.scorers import AgreementScorer, build_scorer
from unipic.data.curation.sources import chain_sources, open_source
from unipic.data.validation import GateResult, gate_index
from unipic.data.versioning import DatasetVersion
from unipic.errors import DataError, IntegrityError
from unipic.lineage import Lineage
from unipic.logging import get_logger

log = get_logger(__name__)
STAGE = "curate"


@dataclass
class CurationInputs:
    """The sections the stage reads (never the whole config)."""

    curation: CurationConfig
    features: FeaturesConfig
    registry: RegistryConfig
    store: StoreConfig
    shapes: ShapesConfig | None = None

    @classmethod
    def from_config(cls, cfg: Any) -> CurationInputs:
        return cls(cfg.curation, cfg.features, cfg.registry, cfg.store, cfg.shapes)

    def hash(self) -> str:
        return config_hash({"curation": self.curation.model_dump(mode="json"),
                            "features": self.features.model_dump(mode="json"),
                            "shapes": self.shapes.model_dump(mode="json") if self.shapes else None})


class CurationOutputs(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    dataset_dir: Path
    validation_dir: Path
    report: CurationReport
    gate: GateResult | None
    manifest_sha256: str
    uri: str | None = None
    version: DatasetVersion | None = None
    features_part: str | None = None
    lineage: Lineage

    def metadata(self) -> dict[str, str]:
        """Flat string metadata for the KFP Dataset artifact (lineage + version + counts)."""
        meta = self.lineage.as_metadata()
        meta.update({"manifest_sha256": self.manifest_sha256, "n_in": str(self.report.n_in),
                     "n_out": str(self.report.n_out), "n_rejected": str(self.report.n_rejected),
                     "gate": "passed" if self.gate is None or self.gate.success else "failed"})
        if self.uri:
            meta["uri"] = self.uri
        if self.version:
            meta.update(self.version.as_metadata())
        return meta


def _samples(sources: Iterable[str | Iterable[Sample]], inputs: CurationInputs) -> Iterable[Sample]:
    opened = [open_source(s, inputs.store, inputs.shapes) if isinstance(s, str) else s for s in sources]
    return chain_sources(opened)


def run_curation(
    sources: Iterable[str | Iterable[Sample]],
    inputs: CurationInputs,
    work_dir: str | Path,
    *,
    publish: bool = True,
    publish_uri: str | None = None,
    features: bool = True,
    version: bool = True,
    scorer: AgreementScorer | None = None,
    message: str = "",
) -> CurationOutputs:
    """Run the whole stage. Raises `GateFailed` (nothing published or versioned) when the data fails the
    suite."""
    from unipic.storage import write_manifest

    work = Path(work_dir)
    dataset_dir, validation_dir = work / "dataset", work / "validation"
    for d in (dataset_dir, validation_dir):
        if d.exists():
            shutil.rmtree(d)
    chash = inputs.hash()
    source_names = [s if isinstance(s, str) else type(s).__name__ for s in sources]
    scorer = scorer if scorer is not None else build_scorer(inputs.curation.scorer, inputs.store)
    report, index = curate_to_dir(_samples(sources, inputs), inputs.curation, dataset_dir, scorer=scorer,
                                  lineage={"stage": STAGE, "config_hash": chash, "sources": source_names})
    gate = None
    if inputs.curation.gate.enabled:
        gate = gate_index(index, inputs.curation.gate, validation_dir)  # raises GateFailed
        shutil.copytree(validation_dir, dataset_dir / "validation")
    lineage = Lineage(stage=STAGE, config_hash=chash)
    manifest = write_manifest(dataset_dir, {
        "format": "unipic-dataset/1", "stage": STAGE, "sources": source_names, "n_samples": report.n_out,
        "counts": report.out_by_task, "rejected": report.rejected, "lineage": lineage.model_dump(),
    })
    out = CurationOutputs(dataset_dir=dataset_dir, validation_dir=validation_dir, report=report, gate=gate,
                          manifest_sha256=manifest.total_sha256, lineage=lineage)
    if publish:
        out.uri = publish_dataset(dataset_dir, inputs, publish_uri or default_uri(inputs, source_names))
        lineage.dataset_uri = out.uri
    if features and inputs.features.enabled and len(index):
        from unipic.features import FeatureStoreClient

        client = FeatureStoreClient(inputs.features, inputs.store)
        out.features_part = client.write_signals(index, part=manifest.total_sha256[:16],
                                                 event_time=datetime.now(timezone.utc))
        client.apply()
        client.materialize()
    if version and inputs.registry.enabled:
        from unipic.data.versioning import DataRegistry

        out.version = DataRegistry(inputs.registry, inputs.store).add_version(
            dataset_dir,
            message or f"curate {', '.join(source_names)} ({report.n_out} samples, config {chash})")
        lineage.dataset_rev = out.version.rev
        lineage.dataset_hash = out.version.md5
    else:
        lineage.dataset_hash = manifest.total_sha256
    where = f", published {out.uri}" if out.uri else ""
    log.info("curation done: %d/%d kept%s%s", report.n_out, report.n_in, where,
             f", version {out.version.tag}" if out.version else "")
    return out


def default_uri(inputs: CurationInputs, source_names: list[str]) -> str:
    """Same config + same sources → same prefix, so a rerun overwrites an interrupted publish."""
    run_id = config_hash({"config": inputs.hash(), "sources": source_names})
    return f"s3://{inputs.store.buckets.data}/{inputs.curation.output_prefix.strip('/')}/{run_id}"


def publish_dataset(dataset_dir: Path, inputs: CurationInputs, uri: str) -> str:
    """Publish (manifest last) and read the manifest back: the store must hold exactly what was written."""
    from unipic.storage import ObjectStore, read_local_manifest

    store = ObjectStore(inputs.store)
    store.ensure_bucket(inputs.store.buckets.data)
    local = read_local_manifest(dataset_dir)
    remote = store.publish_dir(dataset_dir, uri, metadata=local.metadata)
    if remote.total_sha256 != local.total_sha256:
        raise IntegrityError(f"published {uri} hashes to {remote.total_sha256}, local dataset to "
                             f"{local.total_sha256}; rerun the stage to republish")
    stored = store.read_manifest(uri)
    if stored.total_sha256 != local.total_sha256:
        raise IntegrityError(f"{uri}: the manifest in the store does not match what was published; rerun")
    return uri


def check_sources(sources: list[str]) -> None:
    if not sources:
        raise DataError("no sources given; pass --source shapes, folder:DIR, edits:FILE.jsonl or s3://PREFIX")
