"""Password hashing with scrypt (memory-hard, stdlib), in a self-describing string format.

Format: `scrypt$n$r$p$salt_b64$hash_b64`. Verification is constant-time. Async code uses
`hash_password_off_loop` / `verify_password_off_loop`: one check costs tens of milliseconds of
CPU and 16 MiB, so it runs in a worker thread (scrypt releases the GIL), at most
`MAX_PARALLEL` at a time per event loop, which bounds the memory that a burst of logins takes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import weakref

N, R, P, DKLEN = 2**14, 8, 1, 32
MIN_LENGTH = 10
MAX_LENGTH = 1024  # longer input is refused (login: a failure) without hashing it
MAX_PARALLEL = max(1, min(4, os.cpu_count() or 1))


class WeakPassword(ValueError):
    pass


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"password: must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"password: at most {MAX_LENGTH} characters")
    if password.strip() != password:
        raise WeakPassword("password: must not start or end with spaces")


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=DKLEN)
    b64 = base64.b64encode
    return f"scrypt${N}${R}${P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    if len(password) > MAX_LENGTH:
        return False
    try:
        algo, n, r, p, salt_b64, hash_b64 = encoded.split("$")
        if algo != "scrypt":
            return False
        salt = base64.b64decode(salt_b64)
        expected = base64.b64decode(hash_b64)
        digest = hashlib.scrypt(
            password.encode(), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(expected), maxmem=2**26
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)


# one gate per event loop: an asyncio.Semaphore belongs to the loop that first waits on it
_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _gate() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates[loop] = asyncio.Semaphore(MAX_PARALLEL)
    return gate


async def hash_password_off_loop(password: str) -> str:
    async with _gate():
        return await asyncio.to_thread(hash_password, password)


async def verify_password_off_loop(password: str, encoded: str) -> bool:
    async with _gate():
        return await asyncio.to_thread(verify_password, password, encoded)
