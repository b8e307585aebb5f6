"""Provider presets: known providers fill in what the caller leaves out; generic IMAP needs it all."""

import pytest

from mailroom.imap.presets import PRESETS, PROVIDERS, ServerSettings, resolve


def test_every_provider_but_generic_has_an_implicit_tls_preset() -> None:
    assert set(PRESETS) == set(PROVIDERS) - {"generic_imap"}
    assert all(preset.port == 993 and preset.security == "ssl" for preset in PRESETS.values())
    assert PRESETS["gmail"] == ServerSettings("imap.gmail.com", 993, "ssl")
    assert PRESETS["outlook"].host == "outlook.office365.com"
    assert PRESETS["yahoo"].host == "imap.mail.yahoo.com"
    assert PRESETS["icloud"].host == "imap.mail.me.com"


def test_a_known_provider_fills_the_gaps() -> None:
    assert resolve("gmail", None, None, None) == ServerSettings("imap.gmail.com", 993, "ssl")
    assert resolve("icloud", "", None, "") == ServerSettings("imap.mail.me.com", 993, "ssl")


def test_what_the_caller_gives_wins_over_the_preset() -> None:
    assert resolve("outlook", "imap-mail.outlook.com", 143, "tls") == ServerSettings(
        "imap-mail.outlook.com", 143, "tls"
    )
    assert resolve("yahoo", None, 1993, None) == ServerSettings("imap.mail.yahoo.com", 1993, "ssl")


def test_generic_imap_needs_host_port_and_security() -> None:
    assert resolve("generic_imap", " mail.example.com ", 143, "none") == ServerSettings(
        "mail.example.com", 143, "none"
    )
    with pytest.raises(ValueError, match="host, port, security"):
        resolve("generic_imap", None, None, None)
    with pytest.raises(ValueError, match="needs the source server's security"):
        resolve("generic_imap", "mail.example.com", 993, None)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("hotmail", None, None, None), "provider must be one of"),
        (("generic_imap", "mail.example.com", 993, "starttls"), "security must be one of"),
        (("generic_imap", "mail.example.com", 70000, "ssl"), "port must be between 1 and 65535"),
        (("gmail", "   ", None, None), "host must not be empty"),
    ],
)
def test_invalid_settings_say_what_is_wrong(
    arguments: tuple[str, str | None, int | None, str | None], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        resolve(*arguments)
