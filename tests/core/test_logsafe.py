"""Log-safe values: outside input on one line, URLs without credentials."""

from __future__ import annotations

import pytest

from smartcity.core.logsafe import redact_url, safe


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # a password holding unencoded '@' and '/': the credentials end at the last '@'
        ("rtsp://u:p@ss/w@h:554/x", "rtsp://u:***@h:554/x"),
        ("rtsp://admin:s3cr3t@10.0.0.7:554/stream1", "rtsp://admin:***@10.0.0.7:554/stream1"),
        ("rtsp://u:p%40ss%2Fw@h/x", "rtsp://u:***@h/x"),  # percent-encoded
        ("rtsp://:onlypass@h/x", "rtsp://:***@h/x"),
        ("rtsp://u@h/x", "rtsp://u@h/x"),  # no password: nothing to hide
        ("rtsp://h/x", "rtsp://h/x"),
        ("rtsp://u:p@[fe80::1%25eth0]:554/x", "rtsp://u:***@[fe80::1%25eth0]:554/x"),  # IPv6 host
        ("rtsp://[2001:db8::7]:554/x?channel=1", "rtsp://[2001:db8::7]:554/x?channel=1"),
        # secret query parameters, whatever their case or encoding; the others stay verbatim
        ("http://h/x?pwd=a&x=1", "http://h/x?pwd=***&x=1"),
        ("http://h/cgi?user=admin&password=hunter2&res=hd", "http://h/cgi?user=admin&password=***&res=hd"),
        ("http://h/x?Token=abc&p%77d=zz#frag", "http://h/x?Token=***&p%77d=***#frag"),
        ("https://h/snap.jpg?camera_password=q&x-auth-token=t&api_key=k", "https://h/snap.jpg?camera_password=***&x-auth-token=***&api_key=***"),
        ("http://h/x?pwd=a@b&x=1", "http://h/x?pwd=***&x=1"),  # an '@' in the query is not user info
        ("http://u:p@h/x?pwd=a", "http://u:***@h/x?pwd=***"),
        ("file:///var/videos/a.mp4", "file:///var/videos/a.mp4"),
        ("demo://vtest", "demo://vtest"),
    ],
)
def test_redact_url_hides_passwords_and_secret_parameters(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_url_hides_more_rather_than_less_when_ambiguous() -> None:
    # '@' after a password in the query: the password might run to it; never shown
    out = redact_url("http://user:pw@h/x?next=a@b")
    assert "pw" not in out.replace("user", "")
    assert redact_url("rtsp://u:p\nq@h/x") == "rtsp://u:***@h/x"


def test_safe_escapes_control_characters_and_bounds_length() -> None:
    assert safe("SM1\nCRITICAL forged\r\x1b[2J\u2028x\x85") == "SM1\\nCRITICAL forged\\r\\x1b[2J\\u2028x\\x85"
    assert safe("café ok") == "café ok"
    assert safe("a" * 500, 10) == "a" * 10 + "..."
    assert safe(42) == "42"
