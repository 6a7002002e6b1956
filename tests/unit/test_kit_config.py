"""config.yml loading with ${VAR:default} interpolation, the same way `nameko run` does."""
import pytest

from kit.config import load_config, setting
from tests.support.configs import shipped_config


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text(
        "AMQP_URI: ${AMQP_URI:amqp://localhost}\n"
        "max_workers: ${MAX_WORKERS:10}\n"
        "AUTH:\n  required: ${AUTH_REQUIRED:false}\n"
        "NESTED:\n  deep:\n    value: 3\n"
    )
    return path


def test_defaults_apply_without_environment(config_file, monkeypatch):
    monkeypatch.delenv("AMQP_URI", raising=False)
    monkeypatch.delenv("MAX_WORKERS", raising=False)
    monkeypatch.delenv("AUTH_REQUIRED", raising=False)
    config = load_config(config_file)
    assert config["AMQP_URI"] == "amqp://localhost"
    assert config["max_workers"] == 10
    assert setting(config, "AUTH.required") is False


def test_environment_overrides_and_is_typed(config_file, monkeypatch):
    monkeypatch.setenv("MAX_WORKERS", "64")
    monkeypatch.setenv("AUTH_REQUIRED", "true")
    config = load_config(config_file)
    assert config["max_workers"] == 64
    assert setting(config, "AUTH.required") is True


def test_setting_reads_nested_keys_with_a_default(config_file):
    config = load_config(config_file)
    assert setting(config, "NESTED.deep.value") == 3
    assert setting(config, "NESTED.missing", "d") == "d"


@pytest.mark.parametrize("service", ["leads", "deals", "quotes", "support", "metrics"])
def test_every_service_config_loads_with_its_own_database_and_port(service):
    from tests.conftest import ROOT
    config = shipped_config(ROOT / "services" / service / "config.yml")
    assert config["MONGO_DATABASE"] == f"dealflow_{service}"
    port = {"leads": 8001, "deals": 8002, "quotes": 8003, "support": 8004, "metrics": 8005}
    assert config["WEB_SERVER_ADDRESS"].endswith(f":{port[service]}")
