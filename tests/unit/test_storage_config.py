"""Store and services config: endpoint shape, ports, secrets never leaking into dumps or hashes."""

import pytest
from pydantic import ValidationError

from unipic.config import config_hash, config_to_dict, load_config
from unipic.config.store import ServicesConfig, StoreConfig
from unipic.errors import ConfigError


@pytest.mark.parametrize(
    "endpoint,fragment",
    [
        ("http://127.0.0.1:18333", "without http://"),
        ("127.0.0.1", "host:port"),
        ("127.0.0.1:http", "not a TCP port"),
        ("127.0.0.1:70000", "not a TCP port"),
    ],
)
def test_bad_endpoint_is_rejected(endpoint, fragment):
    with pytest.raises(ValidationError, match=fragment):
        StoreConfig(endpoint=endpoint)


def test_endpoint_parts():
    cfg = StoreConfig(endpoint="localhost:9000", secure=True)
    assert (cfg.host, cfg.port, cfg.endpoint_url) == ("localhost", 9000, "https://localhost:9000")


def test_credentials_from_env(monkeypatch):
    monkeypatch.setenv("UNIPIC_S3_ACCESS_KEY", "from-env")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "aws-loses")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    monkeypatch.delenv("UNIPIC_S3_SECRET_KEY", raising=False)
    cfg = StoreConfig()
    assert cfg.access_key.get_secret_value() == "from-env"
    assert cfg.secret_key.get_secret_value() == "aws-secret"


def test_secrets_blanked_in_dump_and_hash():
    a = load_config("ci", ["store.secret_key=s3cr3t-XYZ-one"])
    b = load_config("ci", ["store.secret_key=two"])
    assert config_to_dict(a)["store"]["secret_key"] is None
    assert "s3cr3t-XYZ-one" not in str(config_to_dict(a))
    assert config_hash(a) == config_hash(b)


def test_services_ports_must_differ_and_fit_grpc_offset():
    with pytest.raises(ValidationError, match="must differ"):
        ServicesConfig(master_port=20000, volume_port=20000)
    with pytest.raises(ValidationError):
        ServicesConfig(filer_port=60000)


def test_unknown_store_key_names_allowed_keys():
    with pytest.raises(ConfigError, match="allowed keys under store: .*endpoint"):
        load_config("ci", ["store.endpiont=127.0.0.1:1"])


def test_store_settings_overridable():
    cfg = load_config("ci", ["store.timeout_s=2.5", "store.retries=0", "services.admin_port=24000"])
    assert cfg.store.timeout_s == 2.5 and cfg.store.retries == 0 and cfg.services.admin_port == 24000
