"""`unipic services` against real SeaweedFS processes: start/idempotence/status/stop, ports, PID files, CLI.

Lifecycle tests run their own instance (own state dir and ports) so they never disturb the session store."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from unipic.errors import ServiceError
from unipic.services import process, seaweedfs
from unipic.services.ports import port_is_free
from unipic.storage import ObjectStore

pytestmark = pytest.mark.integration

UNIPIC = str(Path(sys.executable).parent / "unipic")


@pytest.fixture()
def own_configs(tmp_path, seaweed_configs):
    store, services = seaweed_configs(tmp_path / "state")
    yield store, services
    seaweedfs.down(store, services)


def test_up_is_idempotent_status_reports_and_down_stops_only_our_pid(own_configs):
    store, services = own_configs
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        first = seaweedfs.up(store, services)
        assert first.action == "started" and first.running and first.s3_ok
        assert set(first.buckets) == set(store.buckets.model_dump().values())
        assert set(store.buckets.model_dump().values()) <= set(ObjectStore(store).list_buckets())
        paths = seaweedfs.paths_for(services)
        assert paths.pid_file.read_text().strip() == str(first.pid)
        assert oct(paths.identities_file.stat().st_mode & 0o777) == "0o600"

        again = seaweedfs.up(store, services)
        assert again.action == "already-running" and again.pid == first.pid

        st = seaweedfs.status(store, services)
        assert st.running and st.pid == first.pid and st.s3_ok and st.endpoint == store.endpoint

        stopped = seaweedfs.down(store, services)
        assert stopped.action == "stopped" and stopped.pid == first.pid
        assert not process.is_alive(first.pid)
        assert process.is_alive(bystander.pid)
        assert not paths.pid_file.exists()
        assert all(port_is_free(p) for p in seaweedfs.service_ports(store, services).values())
        assert seaweedfs.status(store, services).running is False
        assert seaweedfs.down(store, services).action == "not-running"

        # Restart at once on the same ports: works because down waited until the ports were free.
        restarted = seaweedfs.up(store, services)
        assert restarted.action == "started" and restarted.pid != first.pid
    finally:
        bystander.kill()
        bystander.wait()


def test_data_persists_across_restart(own_configs):
    store, services = own_configs
    seaweedfs.up(store, services)
    uri = f"s3://{store.buckets.runs}/persist/x.txt"
    ObjectStore(store).write_bytes(uri, b"kept")
    paths = seaweedfs.paths_for(services)
    on_disk = seaweedfs.volume_ids_on_disk(paths.data_dir)
    assert on_disk
    seaweedfs.down(store, services)
    seaweedfs.up(store, services)
    # `up` returns only once the master knows the kept volumes: before, a read right after it could be InternalError
    assert on_disk <= seaweedfs.master_volume_ids(services.master_port)
    assert ObjectStore(store).read_bytes(uri) == b"kept"


def test_volume_ids_on_disk_reads_collection_and_plain_names(tmp_path):
    for name in ("unipic-runs_1.dat", "7.dat", "my_bucket_12.dat", "1.idx", "notes.dat", "x_y.dat"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "9.dat").write_bytes(b"")
    assert seaweedfs.volume_ids_on_disk(tmp_path) == {1, 7, 12}


def test_port_taken_by_someone_else_is_a_clear_error(own_configs):
    store, services = own_configs
    with socket.socket() as s:
        s.bind(("127.0.0.1", store.port))
        s.listen()
        with pytest.raises(ServiceError) as exc:
            seaweedfs.up(store, services)
    msg = str(exc.value)
    assert f"{store.port} (store.endpoint (S3))" in msg and "already in use" in msg
    assert not seaweedfs.paths_for(services).pid_file.exists()


def test_stale_pid_file_does_not_block_up(own_configs):
    store, services = own_configs
    paths = seaweedfs.paths_for(services)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    process.write_pid(paths.pid_file, dead.pid)
    st = seaweedfs.up(store, services)
    assert st.action == "started" and st.pid != dead.pid
    assert process.read_pid(paths.pid_file) == st.pid


def test_status_flags_wrong_credentials(seaweed):
    wrong = seaweed.store.model_copy(update={"secret_key": type(seaweed.store.secret_key)("not-the-secret")})
    st = seaweedfs.status(wrong, seaweed.services)
    assert st.running and st.s3_ok is False
    assert "refused the credentials" in st.detail and "not-the-secret" not in st.detail
    with pytest.raises(ServiceError, match="does not accept the configured credentials"):
        seaweedfs.up(wrong, seaweed.services)


def _cli(args, store, services):
    sets = [
        f"store.endpoint={store.endpoint}", f"services.state_dir={services.state_dir}",
        f"services.master_port={services.master_port}", f"services.volume_port={services.volume_port}",
        f"services.filer_port={services.filer_port}", f"services.admin_port={services.admin_port}",
    ]
    env = dict(os.environ, UNIPIC_S3_ACCESS_KEY=store.access_key.get_secret_value(),
               UNIPIC_S3_SECRET_KEY=store.secret_key.get_secret_value())
    cmd = [UNIPIC, "services", *args] + [x for s in sets for x in ("--set", s)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)


def test_cli_status_up_down_json(seaweed):
    res = _cli(["status", "--json"], seaweed.store, seaweed.services)
    assert res.returncode == 0, res.stderr
    st = json.loads(res.stdout)
    assert st["running"] and st["s3_ok"] and st["endpoint"] == seaweed.store.endpoint
    res = _cli(["up"], seaweed.store, seaweed.services)
    assert res.returncode == 0 and "already running" in res.stdout


def test_cli_reports_port_conflict_without_traceback(own_configs):
    store, services = own_configs
    with socket.socket() as s:
        s.bind(("127.0.0.1", services.master_port))
        s.listen()
        res = _cli(["up"], store, services)
    assert res.returncode == 2
    assert f"{services.master_port} (services.master_port)" in res.stderr
    assert "Traceback" not in res.stderr
    res = _cli(["status"], store, services)
    assert res.returncode == 1 and "stopped" in res.stdout


def test_second_state_dir_on_same_ports_explains_the_conflict(seaweed, tmp_path):
    """Another state_dir pointed at the running store's ports: a clear error, and the running one survives."""
    other = seaweed.services.model_copy(update={"state_dir": tmp_path / "other"})
    with pytest.raises(ServiceError, match="already answers on .* but is not recorded in"):
        seaweedfs.up(seaweed.store, other)
    assert seaweedfs.status(seaweed.store, seaweed.services).s3_ok
