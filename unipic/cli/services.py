"""`unipic services up|down|status`: the embedded SeaweedFS object store on 127.0.0.1."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from unipic.cli.common import PresetOpt, SetOpt, make_config

app = typer.Typer(help="Start, stop and inspect the local object store (SeaweedFS).", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the status as JSON.")]


def _print(st, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(st.as_dict(), indent=2))
        return
    state = "running" if st.running else "stopped"
    typer.echo(f"seaweedfs: {state}" + (f" (pid {st.pid})" if st.pid else ""))
    typer.echo(f"  endpoint: http://{st.endpoint}")
    if st.s3_ok is not None:
        typer.echo(f"  s3 api:   {'ok' if st.s3_ok else 'NOT OK'}")
    if st.buckets:
        typer.echo(f"  buckets:  {', '.join(st.buckets)}")
    typer.echo(f"  state:    {st.state_dir}")
    typer.echo(f"  log:      {st.log_file}")
    if st.detail:
        typer.echo(f"  {st.detail}")


@app.command("up")
def up_cmd(preset: PresetOpt = "ci", set_: SetOpt = None, as_json: JsonOpt = False) -> None:
    """Start SeaweedFS (a no-op when ours already runs), wait until S3 answers, create the buckets."""
    from unipic.services import seaweedfs

    cfg = make_config(preset, set_)
    _print(seaweedfs.up(cfg.store, cfg.services), as_json)


@app.command("down")
def down_cmd(preset: PresetOpt = "ci", set_: SetOpt = None, as_json: JsonOpt = False) -> None:
    """Stop the SeaweedFS that `up` started (by its PID) and wait until its ports are free."""
    from unipic.services import seaweedfs

    cfg = make_config(preset, set_)
    _print(seaweedfs.down(cfg.store, cfg.services), as_json)


@app.command("status")
def status_cmd(preset: PresetOpt = "ci", set_: SetOpt = None, as_json: JsonOpt = False) -> None:
    """Report running/stopped, PID, endpoint and whether S3 accepts our credentials (exit 1 if not healthy)."""
    from unipic.services import seaweedfs

    cfg = make_config(preset, set_)
    st = seaweedfs.status(cfg.store, cfg.services)
    _print(st, as_json)
    if not (st.running and st.s3_ok):
        raise typer.Exit(1)
