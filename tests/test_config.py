"""Settings from the environment and the TOML file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mcp_imagegen.config import load_settings
from mcp_imagegen.errors import ConfigError


def test_defaults_use_the_per_user_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMAGEGEN_STORE_DIR")
    settings = load_settings()
    assert "mcp-imagegen" in str(settings.store_dir) and settings.store_dir.is_absolute()
    assert (settings.inline_max_bytes, settings.inline_max_side) == (700_000, 1568)
    assert settings.openai.api_key is None and settings.default_provider is None


def test_environment_names_people_already_use(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-abc")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-1")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "az")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://r.openai.azure.com")
    monkeypatch.setenv("AZURE_OPENAI_API_VERSION", "2025-04-01-preview")
    monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENT", "img")
    monkeypatch.setenv("IMAGEGEN_ALLOWED_DIRS", os.pathsep.join([str(tmp_path / "a"), "~/b"]))
    monkeypatch.setenv("IMAGEGEN_INLINE_MAX_BYTES", "500000")
    settings = load_settings()
    assert settings.openai.api_key is not None and settings.openai.api_key.get_secret_value() == "sk-abc"
    assert (settings.openai.base_url, settings.openai.org_id) == ("http://127.0.0.1:9/v1", "org-1")
    assert (settings.azure.deployment, settings.azure.api_version) == ("img", "2025-04-01-preview")
    assert settings.allowed_dirs == [tmp_path / "a", Path("~/b").expanduser()]
    assert settings.inline_max_bytes == 500_000


def test_toml_file_with_environment_overriding_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "imagegen.toml"
    config.write_text(
        'default_provider = "local-sd"\n'
        "inline_max_side = 1000\n"
        'allowed_dirs = ["/srv/pictures"]\n'
        "[providers.openai]\n"
        'base_url = "http://from-file/v1"\n'
        "[endpoints.local-sd]\n"
        'base_url = "http://127.0.0.1:7860/v1"\n'
        'models = ["sdxl"]\n'
    )
    monkeypatch.setenv("IMAGEGEN_INLINE_MAX_SIDE", "1200")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://from-env/v1")
    settings = load_settings(config)
    assert settings.default_provider == "local-sd"
    assert settings.inline_max_side == 1200
    assert settings.openai.base_url == "http://from-env/v1"
    assert settings.allowed_dirs == [Path("/srv/pictures")]
    assert settings.endpoints["local-sd"].models == ["sdxl"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("stor_dir = 1\n", "stor_dir: Extra inputs are not permitted"),
        ("inline_max_bytes = 5\n", "inline_max_bytes: Input should be greater than or equal to 10000"),
        ("[providers.gemini]\n", "unknown provider section(s) ['gemini']"),
        ("not toml", "is not valid TOML"),
    ],
)
def test_bad_config_files_say_what_is_wrong(tmp_path: Path, text: str, expected: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert expected in str(caught.value)


def test_invalid_values_never_echo_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_TIMEOUT_S", "sk-looks-like-a-secret")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "timeout_s" in str(caught.value) and "sk-looks-like-a-secret" not in str(caught.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "nope.toml")


def test_long_call_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert (settings.wait_seconds, settings.heartbeat_seconds) == (45.0, 4.0)
    assert (settings.job_timeout_seconds, settings.job_retention_seconds) == (900.0, 3600.0)
    assert settings.openai.timeout_s == 300.0
    monkeypatch.setenv("IMAGEGEN_WAIT_SECONDS", "20")
    monkeypatch.setenv("OPENAI_TIMEOUT_S", "120")
    monkeypatch.setenv("AZURE_OPENAI_TIMEOUT_S", "90")
    settings = load_settings()
    assert (settings.wait_seconds, settings.openai.timeout_s, settings.azure.timeout_s) == (20.0, 120.0, 90.0)
    monkeypatch.setenv("IMAGEGEN_HEARTBEAT_SECONDS", "0")
    with pytest.raises(ConfigError, match="heartbeat_seconds: Input should be greater than 0"):
        load_settings()


def test_security_settings_lists_and_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEGEN_URL_ALLOWED_NETWORKS", "10.0.0.0/8, 192.168.1.0/24")
    monkeypatch.setenv("IMAGEGEN_AUTH_TOKENS", "token-one-123, token-two-456")
    monkeypatch.setenv("IMAGEGEN_ALLOWED_HOSTS", '["images.example.com", "images.example.com:*"]')
    monkeypatch.setenv("OPENAI_API_KEY", "sk-config-test-key")
    settings = load_settings()
    assert [str(network) for network in settings.url_allowed_networks] == ["10.0.0.0/8", "192.168.1.0/24"]
    assert settings.allowed_hosts == ["images.example.com", "images.example.com:*"]
    assert settings.allow_url_inputs is False and settings.rate_limit_per_minute is None
    assert set(settings.secret_values()) == {"sk-config-test-key", "token-one-123", "token-two-456"}
    monkeypatch.setenv("IMAGEGEN_URL_ALLOWED_NETWORKS", "10.0.0.0/33")
    with pytest.raises(ConfigError, match="url_allowed_networks") as caught:
        load_settings()
    assert "10.0.0.0/33" not in str(caught.value)


def test_team_settings_budgets_prices_and_named_tokens(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "team.toml"
    config.write_text(
        """
budget_usd_per_day = 5.0
confirm_above_usd = 0.5
remote_allow_paths = ["~/shared"]

[budgets]
alice = 20.0

[[prices]]
providers = ["openai"]
model = "gpt-image-2*"
quality = "high"
usd_per_image = 0.2
source = "https://openai.com/api/pricing/"
as_of = 2026-11-01
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("IMAGEGEN_AUTH_TOKENS", "alice:secret-a,bare-secret")
    settings = load_settings(config)
    assert settings.budget_for("alice") == 20.0 and settings.budget_for("bob") == 5.0
    assert settings.confirm_above_usd == 0.5 and settings.remote_allow_paths == [
        Path("~/shared").expanduser()
    ]
    [price] = settings.prices
    assert price.model == "gpt-image-2*" and price.as_of.isoformat() == "2026-11-01"
    assert {"secret-a", "bare-secret"} <= set(settings.secret_values()), (
        "the token alone is scrubbed from logs"
    )
    config.write_text('[[prices]]\nproviders = ["openai"]\nmodel = "m"\nsource = "s"\nas_of = 2026-01-01\n')
    with pytest.raises(ConfigError, match="give usd_per_image"):
        load_settings(config)
