"""`unipic features ...`: read the per-sample curation signals in the Feast feature store."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from unipic.cli.common import PresetOpt, SetOpt, make_config
from unipic.errors import DataError

app = typer.Typer(help="Per-sample curation signals in the Feast feature store.", no_args_is_help=True)


@app.command("show")
def show(
    sample_ids: Annotated[list[str], typer.Argument(help="one or more sample ids")],
    preset: PresetOpt = "ci",
    set_: SetOpt = None,
) -> None:
    """Print the online-store features of SAMPLE_ID(s) as JSON."""
    from unipic.features import FeatureStoreClient

    cfg = make_config(preset, set_)
    client = FeatureStoreClient(cfg.features, cfg.store)
    rows = client.online(sample_ids)
    missing = [r["sample_id"] for r in rows if all(v is None for k, v in r.items() if k != "sample_id")]
    if len(missing) == len(rows):
        raise DataError(
            f"no features for {', '.join(missing)} in the online store ({cfg.features.state_dir}); "
            "curate a dataset first (`unipic data curate`), which writes and materializes the signals"
        )
    typer.echo(json.dumps(rows if len(rows) > 1 else rows[0], indent=2, default=str))
