from __future__ import annotations

import re
from pathlib import Path

import pytest

from config import Settings, SettingsError, env_name, load_settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults_are_the_embedded_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(data_dir=tmp_path / "d")
    assert settings.redis_url is None
    assert settings.effective_database_url == (
        f"sqlite+aiosqlite:///{(tmp_path / 'd' / 'liveshop.db').resolve()}"
    )
    assert (tmp_path / "d").is_dir()


def test_urls_are_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@127.0.0.1:5432/shop")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/2")
    settings = load_settings()
    assert settings.effective_database_url == "postgresql+asyncpg://u@127.0.0.1:5432/shop"
    assert settings.redis_url == "redis://127.0.0.1:6379/2"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("DATABASE_URL", "mysql://x/y", "expected a sqlite:/// or postgresql:// URL"),
        ("DATABASE_URL", "sqlite://", "in-memory SQLite"),
        ("DATABASE_URL", "sqlite:///:memory:", "in-memory SQLite"),
        ("DATABASE_URL", "sqlite:///file:shop?mode=memory&uri=true", "in-memory SQLite"),
        ("DATABASE_URL", "sqlite:///file::memory:?uri=true", "in-memory SQLite"),
        ("DATABASE_URL", "sqlite:///f?mode=ro&mode=memory&uri=true", "in-memory SQLite"),
        ("REDIS_URL", "http://x", "expected a redis://, rediss:// or unix:// URL"),
        ("LIVESHOP_PORT", "eighty", "valid integer"),
        ("LIVESHOP_CART_HOLD_S", "1", "greater than or equal to 10"),
        ("LIVESHOP_LOG_FORMAT", "xml", "'json' or 'text'"),
        ("LIVESHOP_ICE_HOST_ADDRESSES", "not-an-ip", "expected IP addresses"),
        ("LIVESHOP_ICE_SERVERS", "http://stun", "expected stun:, turn: or turns: URLs"),
        ("LIVESHOP_SECRET_KEY", "short", "at least 32 characters"),
        ("LIVESHOP_TURN_CREDENTIAL", "pw", "go together"),
        ("LIVESHOP_TURN_USERNAME", "a b", "should match pattern"),
        ("LIVESHOP_TURN_TTL_S", "5", "greater than or equal to 60"),
        ("LIVESHOP_RECONNECT_GRACE_S", "-1", "greater than or equal to 0"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert f"{name}: " in str(info.value)
    assert expected in str(info.value)


def test_lists_take_commas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVESHOP_ICE_HOST_ADDRESSES", "127.0.0.1, ::1")
    monkeypatch.setenv("LIVESHOP_ICE_SERVERS", "stun:stun.example.org:3478")
    settings = load_settings()
    assert settings.ice_host_addresses == ["127.0.0.1", "::1"]
    assert settings.ice_servers == ["stun:stun.example.org:3478"]


def test_signing_key_is_kept_in_the_data_folder(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, secret_key=None)
    key = settings.signing_key()
    assert len(key) >= 32
    assert load_settings(data_dir=tmp_path, secret_key=None).signing_key() == key
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600


def test_every_setting_is_documented() -> None:
    """Each setting has a '### VARIABLE' heading in the README's Settings section."""
    text = README.read_text()
    section = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    headings = set(re.findall(r"^### `?([A-Z_]+)`?", section, flags=re.M))
    expected = {env_name(field) for field in Settings.model_fields}
    assert expected - headings == set(), "undocumented settings"
    assert headings - expected == set(), "documented settings that do not exist"


def test_turn_credentials_static_or_shared_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVESHOP_TURN_USERNAME", "relay")
    monkeypatch.setenv("LIVESHOP_TURN_CREDENTIAL", "s3cret")
    settings = load_settings()
    assert (settings.turn_username, settings.turn_credential) == ("relay", "s3cret")
    monkeypatch.setenv("LIVESHOP_TURN_SECRET", "a-shared-secret-of-coturn")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "LIVESHOP_TURN_SECRET: " in str(info.value) and "not both" in str(info.value)


def test_stripe_needs_its_secret_key_and_webhook_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVESHOP_PAYMENT_PROVIDER", "stripe")
    monkeypatch.setenv("LIVESHOP_STRIPE_SECRET_KEY", "sk_test_do-not-print-me")
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert "LIVESHOP_PAYMENT_PROVIDER=stripe needs LIVESHOP_STRIPE_WEBHOOK_SECRET set" in message
    assert "do-not-print-me" not in message  # a rule across settings shows no values
    monkeypatch.setenv("LIVESHOP_STRIPE_WEBHOOK_SECRET", "whsec_test")
    settings = load_settings()
    assert settings.stripe_api_base == "https://api.stripe.com"
    assert settings.stripe_js_url == "https://js.stripe.com/v3/"


def test_the_test_provider_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIVESHOP_PAYMENT_PROVIDER", raising=False)
    assert load_settings().payment_provider == "test"
    monkeypatch.setenv("LIVESHOP_PAYMENT_PROVIDER", "paypal")
    with pytest.raises(SettingsError, match="LIVESHOP_PAYMENT_PROVIDER: "):
        load_settings()
