from __future__ import annotations

import pytest

from smartcity.core.passwords import WeakPassword, check_strength, hash_password, verify_password


def test_hash_and_verify() -> None:
    h = hash_password("correct horse battery")
    assert h.startswith("scrypt$16384$8$1$")
    assert verify_password("correct horse battery", h)
    assert not verify_password("correct horse batterY", h)
    assert hash_password("correct horse battery") != h  # salted
    assert not verify_password("x", "not-a-hash")


def test_strength() -> None:
    with pytest.raises(WeakPassword, match="at least 10"):
        check_strength("short")
    check_strength("long enough password")
