"""The HTTP server around `UniPicPredictor`: KServe's own V1/V2 endpoint code on our FastAPI app, on loopback.

Why not `kserve.ModelServer.start()`: it hard-codes host 0.0.0.0, builds one module-level app per process (so two
servers cannot be tested side by side), and refuses to start until the model is ready, so a cold start looks like
a dead port. Here the port opens at once, `/v2/health/live` answers, and `/v2/health/ready` and the model routes
say 503 until `load()` (download, load, warm-up) has finished. The repository load/unload routes are dropped: on a
public endpoint they would let anyone unload the model.

`start_detached` runs `python -m unipic.serving.server` in its own session with a PID file and an endpoint
record under the services state dir, so a server started by a pipeline component outlives the component.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from unipic.config.serve import ServeConfig
from unipic.config.store import StoreConfig
from unipic.errors import ServiceError
from unipic.logging import get_logger
from unipic.serving.predictor import UniPicPredictor
from unipic.serving.schemas import RequestError

log = get_logger(__name__)


class BodyLimit:
    """ASGI middleware: refuse bodies over `max_bytes` with 413 before they are buffered or parsed."""

    def __init__(self, app: Any, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_big = JSONResponse(
            status_code=413,
            content={
                "error": f"request body is over the limit max_payload_bytes={self.max_bytes}; send a smaller image or "
                "fewer instances",
                "field": "body",
            },
        )
        try:
            if declared is not None and int(declared) > self.max_bytes:
                return await too_big(scope, receive, send)
        except ValueError:
            return await JSONResponse(status_code=400, content={"error": "invalid Content-Length"})(
                scope, receive, send
            )
        seen = 0

        async def limited_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooBig()
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooBig:
            await too_big(scope, receive, send)


class _TooBig(Exception):
    pass


class DefaultJSON:
    """ASGI middleware: a V2 infer body with neither a Content-Type nor the binary-extension header is JSON.

    The V2 protocol's default body is JSON, and tritonclient's HTTP client sends pure-JSON requests without a
    Content-Type; KServe's route would read those as binary-extension bytes and answer 400."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if (
            scope["type"] == "http"
            and scope.get("method") == "POST"
            and scope.get("path", "").endswith("/infer")
        ):
            names = {k.lower() for k, _ in scope.get("headers") or []}
            if b"content-type" not in names and b"inference-header-content-length" not in names:
                scope = {
                    **scope,
                    "headers": [*scope.get("headers", []), (b"content-type", b"application/json")],
                }
        await self.app(scope, receive, send)


def build_app(model: UniPicPredictor, cfg: ServeConfig) -> FastAPI:
    """A FastAPI app with KServe's V1/V2 routes, `/metrics`, readiness that tracks `model.ready`, and error
    handlers that turn request problems into 4xx with a message (never a dead server)."""
    import kserve.errors as kerr
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane
    from kserve.protocol.rest.server import metrics_handler
    from kserve.protocol.rest.v1_endpoints import register_v1_endpoints
    from kserve.protocol.rest.v2_endpoints import register_v2_endpoints

    repo = ModelRepository()
    repo.update(model)
    dataplane = DataPlane(model_registry=repo)
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")  # kserve's routes still use it
    app = FastAPI(title="UniPic serving (KServe V1/V2)", docs_url=None, redoc_url=None)

    async def live() -> dict[str, str]:
        return {"status": "alive"}

    async def ready() -> JSONResponse:
        if not model.ready:
            return JSONResponse(
                status_code=503, content={"ready": False, "error": "model is loading/warming up"}
            )
        return JSONResponse(content={"ready": True})

    app.add_api_route("/", live, methods=["GET"])
    app.add_api_route("/metrics", metrics_handler, methods=["GET"])
    app.add_api_route("/v2/health/ready", ready, methods=["GET"])

    async def no_repository(path: str) -> JSONResponse:
        return JSONResponse(status_code=404, content={"error": "the model repository API is disabled here"})

    app.add_api_route("/v2/repository/{path:path}", no_repository, methods=["GET", "POST"])
    register_v1_endpoints(app, dataplane, None)  # routes registered first win: the two above shadow kserve's
    register_v2_endpoints(app, dataplane, None)

    async def request_error(_: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse(status_code=exc.status, content=exc.to_dict())

    def status(code: int):
        async def handler(_: Request, exc: Exception) -> JSONResponse:
            return JSONResponse(status_code=code, content={"error": str(exc)})

        return handler

    async def invalid_body(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes the input back and fails (500) on Infinity/NaN; name the fields instead.
        parts = [
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors()
        ]
        return JSONResponse(
            status_code=422, content={"error": "; ".join(parts)[:2000] or "invalid request body"}
        )

    app.add_exception_handler(RequestError, request_error)
    app.add_exception_handler(RequestValidationError, invalid_body)
    app.add_exception_handler(kerr.InvalidInput, status(400))
    app.add_exception_handler(kerr.ModelNotFound, status(404))
    app.add_exception_handler(kerr.ModelNotReady, status(503))
    app.add_exception_handler(kerr.ServerNotReady, status(503))
    app.add_exception_handler(kerr.ServerNotLive, status(503))
    app.add_exception_handler(NotImplementedError, status(501))
    app.add_exception_handler(kerr.InferenceError, status(500))
    app.add_exception_handler(Exception, kerr.generic_exception_handler)
    app.add_middleware(DefaultJSON)
    app.add_middleware(BodyLimit, max_bytes=cfg.limits.max_payload_bytes)
    return app


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def serve(
    model: str | Path | None,
    cfg: ServeConfig,
    store_cfg: StoreConfig | None = None,
    record: Path | None = None,
) -> int:
    """Run the server in the foreground until SIGTERM/SIGINT. The port opens at once; the model loads in a
    thread. Returns the exit code: 0 after a clean stop, 1 when the model failed to load."""
    import uvicorn

    port = cfg.port or free_port(cfg.host)
    predictor = UniPicPredictor(cfg.model_name, model, cfg, store_cfg)
    app = build_app(predictor, cfg)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=cfg.host, port=port, log_config=None, timeout_keep_alive=65, access_log=False
        )
    )
    failed: list[BaseException] = []

    async def main() -> None:
        serving = asyncio.create_task(server.serve())
        try:
            await asyncio.get_running_loop().run_in_executor(None, predictor.load)
        except BaseException as exc:  # noqa: BLE001 - reported, then the process exits non-zero
            log.error("model failed to load: %s", exc)
            failed.append(exc)
            server.should_exit = True
        else:
            if record is not None:
                write_record(
                    record,
                    ServerRecord(
                        name=cfg.model_name,
                        url=f"http://{cfg.host}:{port}",
                        pid=os.getpid(),
                        model=str(model),
                        model_version=predictor.version,
                        started=time.time(),
                    ),
                )
        await serving
        predictor.stop()

    log.info(
        "serving %s on http://%s:%d (V1 /v1/models/%s:predict, V2 /v2/models/%s/infer)",
        model,
        cfg.host,
        port,
        cfg.model_name,
        cfg.model_name,
    )
    asyncio.run(main())
    return 1 if failed else 0


# --- detached servers (PID file + endpoint record) ------------------------------------------------------------
@dataclass
class ServerRecord:
    name: str
    url: str
    pid: int
    model: str
    model_version: str
    started: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paths(state_dir: Path, name: str) -> tuple[Path, Path, Path]:
    """PID file, endpoint record and log of the detached server `name`."""
    base = Path(state_dir) / "serve"
    return base / f"{name}.pid", base / f"{name}.json", base / f"{name}.log"


def write_record(path: Path, rec: ServerRecord) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(json.dumps(rec.to_dict(), indent=2))
    os.replace(tmp, path)


def read_record(state_dir: Path, name: str) -> ServerRecord | None:
    pid_file, rec_file, _ = paths(state_dir, name)
    from unipic.services.process import is_alive, read_pid

    pid = read_pid(pid_file)
    if pid is None or not is_alive(pid) or not rec_file.is_file():
        return None
    rec = ServerRecord(**json.loads(rec_file.read_text()))
    return rec if rec.pid == pid else None


def _wait_ready(url: str, pid: int, timeout: float, log_file: Path) -> None:
    import httpx

    from unipic.services.process import is_alive

    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=2.0) as http:
        while time.monotonic() < deadline:
            if not is_alive(pid):
                tail = log_file.read_text(errors="replace")[-2000:] if log_file.is_file() else ""
                raise ServiceError(
                    f"the model server exited while starting; its log ({log_file}) ends with:\n{tail}"
                )
            try:
                if http.get("/v2/health/ready").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
    raise ServiceError(
        f"the model server at {url} was not ready after {timeout:.0f} s (serve.startup_timeout_s); "
        f"see {log_file}"
    )


def start_detached(
    model: str, cfg: ServeConfig, preset: str = "ci", overrides: list[str] | None = None
) -> ServerRecord:
    """Start a server that outlives this process; wait until it is ready. Refuses to start a second server of
    the same name (stop it first: `unipic serve stop --name NAME`)."""
    from unipic.services.process import write_pid

    existing = read_record(cfg.state_dir, cfg.model_name)
    if existing is not None:
        raise ServiceError(
            f"a server named '{cfg.model_name}' already runs at {existing.url} (pid {existing.pid}); "
            f"stop it with `unipic serve stop --name {cfg.model_name}` or choose another --name"
        )
    pid_file, rec_file, log_file = paths(cfg.state_dir, cfg.model_name)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    rec_file.unlink(missing_ok=True)
    port = cfg.port or free_port(cfg.host)
    cmd = [
        sys.executable,
        "-m",
        "unipic.serving.server",
        "--model",
        str(model),
        "--preset",
        preset,
        "--record",
        str(rec_file),
    ]
    for item in [
        *(overrides or []),
        f"serve.port={port}",
        f"serve.host={cfg.host}",
        f"serve.model_name={cfg.model_name}",
    ]:
        cmd += ["--set", item]  # ours last: they win over a `serve.port=0` in the caller's overrides
    with open(log_file, "ab") as logf:
        proc = subprocess.Popen(
            cmd,
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=os.getcwd(),
            env={**os.environ, "UNIPIC_NO_PROGRESS": "1"},
        )
    write_pid(pid_file, proc.pid)
    url = f"http://{cfg.host}:{port}"
    try:
        _wait_ready(url, proc.pid, cfg.startup_timeout_s, log_file)
        deadline = time.monotonic() + 10
        while not rec_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.05)
    except BaseException:
        stop_detached(cfg.state_dir, cfg.model_name, cfg.stop_timeout_s)
        raise
    rec = ServerRecord(**json.loads(rec_file.read_text()))
    log.info("model server '%s' ready at %s (pid %d, log %s)", cfg.model_name, url, proc.pid, log_file)
    return rec


def stop_detached(state_dir: Path, name: str, timeout: float = 15.0) -> str:
    """Stop the detached server `name` by its PID file (never by process name). Returns how it ended."""
    from unipic.services.process import cmdline, read_pid, terminate

    pid_file, rec_file, _ = paths(state_dir, name)
    pid = read_pid(pid_file)
    if pid is None:
        return "not running"
    if "unipic.serving.server" not in " ".join(cmdline(pid)):
        pid_file.unlink(missing_ok=True)
        rec_file.unlink(missing_ok=True)
        return "stale pid file removed"
    how = terminate(pid, timeout)
    pid_file.unlink(missing_ok=True)
    rec_file.unlink(missing_ok=True)
    return how


def main(argv: list[str] | None = None) -> int:
    """Entry point of the detached server and of the container (`python -m unipic.serving.server`)."""
    from unipic.config import load_config
    from unipic.logging import setup_logging

    parser = argparse.ArgumentParser(prog="python -m unipic.serving.server")
    parser.add_argument(
        "--model", default=None, help="folder or s3:// URI; default /mnt/models or $STORAGE_URI"
    )
    parser.add_argument("--preset", default=os.environ.get("UNIPIC_PRESET", "ci"))
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--record", type=Path, default=None, help="write the endpoint record here when ready")
    args = parser.parse_args(argv)
    setup_logging()
    cfg = load_config(args.preset, args.sets)
    return serve(args.model, cfg.serve, cfg.store, record=args.record)


if __name__ == "__main__":
    sys.exit(main())
