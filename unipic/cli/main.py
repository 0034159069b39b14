"""`unipic`: the command-line entry point. Command groups live in sibling modules."""

from __future__ import annotations

import errno
import json
import sys

import typer

from unipic.cli.common import PresetOpt, SetOpt, make_config
from unipic.config import config_hash, config_to_dict
from unipic.errors import UniPicError
from unipic.logging import setup_logging

app = typer.Typer(
    name="unipic",
    help="UniPic 2.0 on Kubeflow: curate, pre-train, RL, MetaQuery, evaluate and serve.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
config_app = typer.Typer(help="Inspect presets and resolved configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(preset: PresetOpt = "ci", set_: SetOpt = None) -> None:
    """Print the resolved configuration (secrets blanked) and its hash."""
    cfg = make_config(preset, set_)
    typer.echo(json.dumps({"config_hash": config_hash(cfg), "config": config_to_dict(cfg)}, indent=2))


def _register() -> None:
    """Attach command groups. Each import is cheap: heavy libraries load inside the commands."""
    from unipic.cli import registry

    for name, sub in registry.groups():
        app.add_typer(sub, name=name)
    for name, func in registry.commands():
        app.command(name)(func)


_DISK_ERRORS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied"}


def disk_error_message(exc: OSError) -> str | None:
    """A one-line explanation for the file-system failures a user fixes by freeing space or moving the output."""
    what = _DISK_ERRORS.get(exc.errno or -1)
    if what is None:
        return None
    where = f" writing {exc.filename}" if exc.filename else ""
    return (f"{what}{where}: free space or point the output (--out, run.workdir, services.state_dir) at another "
            "disk. Outputs are built under a temporary name and renamed only when complete, so nothing partial "
            "was published")


def main() -> None:
    setup_logging()
    _register()
    try:
        app()
    except UniPicError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except OSError as exc:
        message = disk_error_message(exc)
        if message is None:
            raise
        typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
