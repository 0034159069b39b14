"""Stage inputs and outputs shared by the trainers: inputs resolved from a folder or s3:// URI, and models
exported so that no reader ever sees a half-written folder."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from unipic.errors import ConfigError
from unipic.lineage import Lineage

LINEAGE_FILE = "unipic_lineage.json"
MODEL_CARD = "unipic_model.json"


def resolve_input(uri: str, what: str, key: str, store_cfg: Any, cache_dir: Path) -> Path:
    """A local folder, or an s3:// prefix materialised (hash-verified) into `cache_dir`."""
    if not uri:
        raise ConfigError(f"{key} is empty: give the {what} as a local directory or an s3:// URI "
                          f"(e.g. --set {key}=path)")
    from unipic.storage import materialize

    return Path(materialize(uri, store_cfg, cache_dir))


def export_pipeline(pipe: Any, output: str, *, lineage: Lineage, record: dict[str, Any], work_dir: Path,
                    store_cfg: Any = None, card_from: Path | None = None,
                    card_update: dict[str, Any] | None = None) -> str:
    """Save `pipe` (diffusers layout, safetensors) with its lineage record into a temp folder, then rename it
    into place, or publish it to s3:// with the manifest written last. `card_from`'s model card is carried
    over with `card_update` applied."""
    from unipic.storage import ObjectStore, is_s3_uri
    from unipic.storage.local import replace_dir

    def fill(folder: Path) -> None:
        pipe.save_pretrained(folder, safe_serialization=True)
        (folder / LINEAGE_FILE).write_text(
            json.dumps({**lineage.model_dump(), **record}, indent=2, sort_keys=True))
        card = card_from / MODEL_CARD if card_from else None
        if card is not None and card.is_file():
            data = {**json.loads(card.read_text()), **(card_update or {})}
            (folder / MODEL_CARD).write_text(json.dumps(data, indent=2, sort_keys=True))

    if not is_s3_uri(output):
        with replace_dir(Path(output)) as tmp:
            fill(tmp)
        return output
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-tmp-", dir=work_dir) as tmp:
        fill(Path(tmp))
        ObjectStore(store_cfg).publish_dir(Path(tmp), output, metadata=lineage.as_metadata())
    return output
