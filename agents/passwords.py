"""Password hashing with argon2id (argon2-cffi's defaults follow RFC 9106)."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verifying against this when the e-mail is unknown keeps login time the same for unknown users.
_DUMMY_HASH = _hasher.hash("not a real password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


# One argon2 verification is ~200 ms of CPU (64 MiB, 3 passes): on the event loop it froze every webhook and
# WebSocket for that long per login. argon2-cffi releases the GIL, so a thread keeps the loop running.


async def verify_password_off_loop(password_hash: str | None, password: str) -> bool:
    return await asyncio.to_thread(verify_password, password_hash, password)


async def hash_password_off_loop(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)
