"""`unipic serve --model URI`: the KServe model server on 127.0.0.1; `stop`, `status` and `call` beside it.

`unipic serve --model DIR` runs in the foreground (Ctrl-C stops it); `--detach` starts it in the background with
a PID file under the services state dir, waits until it is ready and prints its endpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from unipic.cli.common import PresetOpt, SetOpt, make_config

app = typer.Typer(
    help="Serve a model over KServe V1/V2 REST on 127.0.0.1 (start, stop, status, call).",
    invoke_without_command=True,
    no_args_is_help=False,
)

NameOpt = Annotated[
    str | None, typer.Option("--name", help="Model name in the URL (default serve.model_name).")
]


def _sets(sets: list[str] | None, host: str | None, port: int | None, name: str | None) -> list[str]:
    out = list(sets or [])
    if host is not None:
        out.append(f"serve.host={host}")
    if port is not None:
        out.append(f"serve.port={port}")
    if name is not None:
        out.append(f"serve.model_name={name}")
    return out


@app.callback()
def serve(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model folder or s3:// URI.")] = None,
    host: Annotated[str | None, typer.Option("--host", help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (0: a free one).")] = None,
    name: NameOpt = None,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Run in the background (PID file).")] = False,
    preset: PresetOpt = "ci",
    set_: SetOpt = None,
) -> None:
    """Start the model server (foreground, or --detach). Sub-commands: stop, status, call."""
    if ctx.invoked_subcommand is not None:
        return
    from unipic.errors import ServiceError

    if model is None:
        raise ServiceError("give the model to serve: unipic serve --model DIR_OR_S3_URI")
    sets = _sets(set_, host, port, name)
    cfg = make_config(preset, sets)
    if detach:
        from unipic.serving.server import start_detached

        rec = start_detached(model, cfg.serve, preset, sets)
        typer.echo(json.dumps(rec.to_dict(), indent=2))
        return
    from unipic.serving.server import serve as run

    raise typer.Exit(run(model, cfg.serve, cfg.store))


@app.command("stop")
def stop(name: NameOpt = None, preset: PresetOpt = "ci", set_: SetOpt = None) -> None:
    """Stop a detached server by its PID file (never by process name)."""
    from unipic.serving.server import stop_detached

    cfg = make_config(preset, _sets(set_, None, None, name))
    how = stop_detached(cfg.serve.state_dir, cfg.serve.model_name, cfg.serve.stop_timeout_s)
    typer.echo(f"{cfg.serve.model_name}: {how}")


@app.command("status")
def status(name: NameOpt = None, preset: PresetOpt = "ci", set_: SetOpt = None) -> None:
    """Print the endpoint record of a detached server and whether it is ready (exit 1 when not running)."""
    from unipic.serving.client import ServingClient
    from unipic.serving.server import read_record

    cfg = make_config(preset, _sets(set_, None, None, name))
    rec = read_record(cfg.serve.state_dir, cfg.serve.model_name)
    if rec is None:
        typer.echo(f"{cfg.serve.model_name}: not running")
        raise typer.Exit(1)
    with ServingClient(rec.url, rec.name) as client:
        ready = client.ready()
    typer.echo(json.dumps({**rec.to_dict(), "ready": ready}, indent=2))
    if not ready:
        raise typer.Exit(1)


@app.command("call")
def call(
    endpoint: Annotated[str, typer.Option("--endpoint", "-e", help="http://HOST:PORT or a model URL.")],
    prompt: Annotated[str, typer.Option("--prompt", help="Prompt, edit instruction or question.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Directory for the PNGs.")] = None,
    image: Annotated[
        Path | None, typer.Option("--image", help="Source image: editing/understanding.")
    ] = None,
    task: Annotated[
        str | None, typer.Option("--task", help="t2i, edit or understand (default from --image).")
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps")] = None,
    guidance: Annotated[float | None, typer.Option("--guidance")] = None,
    size: Annotated[int | None, typer.Option("--size", help="Square side in px.")] = None,
    seed: Annotated[int | None, typer.Option("--seed")] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="Images.")] = 1,
    protocol: Annotated[str, typer.Option("--protocol", help="v1 or v2.")] = "v1",
    name: NameOpt = None,
    preset: PresetOpt = "ci",
    set_: SetOpt = None,
) -> None:
    """One request to a running server; prints the response summary and writes PNGs to --out."""
    from unipic.serving.client import ServingClient, image_b64, save_result

    cfg = make_config(preset, set_)
    instance = {
        "prompt": prompt,
        "task": task,
        "image": image_b64(image) if image else None,
        "steps": steps,
        "guidance": guidance,
        "width": size,
        "height": size,
        "seed": seed,
        "num_images": n,
    }
    with ServingClient(endpoint, name, protocol, cfg.serve.client) as client:  # type: ignore[arg-type]
        result = client.run(instance)
    summary = {"model_version": result.model_version, "seeds": result.seeds, "timings": result.timings}
    if result.text is not None:
        summary["text"] = result.text
    if out is not None and result.images:
        summary["files"] = [str(p) for p in save_result(result, out)]
    typer.echo(json.dumps(summary, indent=2))


@app.command("manifests")
def manifests(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory (manifests/serving).")] = Path(
        "manifests/serving"
    ),
    name: NameOpt = None,
    preset: PresetOpt = "base",
    set_: SetOpt = None,
) -> None:
    """Write the kustomize files for the cluster (InferenceService, ServiceAccount, secret template)."""
    from unipic.serving.deploy import render_manifests

    cfg = make_config(preset, _sets(set_, None, None, name))
    out.mkdir(parents=True, exist_ok=True)
    for fname, text in render_manifests(cfg.serve.deploy, cfg.serve.model_name, preset).items():
        tmp = out / f".tmp-{fname}"
        tmp.write_text(text)
        tmp.replace(out / fname)
        typer.echo(str(out / fname))


@app.command("deploy")
def deploy(
    model: Annotated[str, typer.Option("--model", "-m", help="Model folder or s3:// URI.")],
    cluster: Annotated[
        bool, typer.Option("--cluster", help="KServe InferenceService instead of a local server.")
    ] = False,
    name: NameOpt = None,
    preset: PresetOpt = "ci",
    set_: SetOpt = None,
) -> None:
    """Deploy and smoke-test: a detached local server, or (--cluster) a canary rollout with promote/rollback."""
    from unipic.serving import deploy as dep

    sets = _sets(set_, None, None, name)
    cfg = make_config(preset, sets)
    if cluster:
        record = dep.deploy_cluster(model, cfg.serve, dep.kserve_client(), preset).to_dict()
    else:
        record = dep.deploy_local(model, cfg.serve, preset, sets)
    typer.echo(json.dumps(record, indent=2))
