"""Credentials: passwords (argon2id), API tokens and session ids (random, stored as SHA-256 digests).

>>> token = new_token()
>>> token.startswith("llt_") and len(token) > 40
True
>>> len(digest(token))
64
>>> verify_password(hash_password("s3cret pass"), "s3cret pass")
True
>>> verify_password(hash_password("s3cret pass"), "wrong")
False
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import lru_cache
from typing import TYPE_CHECKING

from loopline.errors import InvalidArgumentError, MissingDependencyError

if TYPE_CHECKING:
    from argon2 import PasswordHasher

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "TOKEN_PREFIX",
    "check_password_strength",
    "constant_time_equal",
    "digest",
    "hash_password",
    "new_session_id",
    "new_token",
    "verify_password",
]

TOKEN_PREFIX = "llt_"
MIN_PASSWORD_LENGTH = 8


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    try:
        from argon2 import PasswordHasher
    except ModuleNotFoundError as exc:  # pragma: no cover - a declared dependency
        raise MissingDependencyError("argon2-cffi", "server") from exc
    # OWASP's argon2id baseline (19 MiB, 2 passes): tens of milliseconds per check,
    # which keeps guessing slow and sign-in prompt.
    return PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)


def hash_password(password: str) -> str:
    """An argon2id hash (salted; parameters recorded in the string)."""
    return _hasher().hash(password)


def verify_password(hashed: str | None, password: str) -> bool:
    """True when ``password`` matches; never raises on a bad or missing hash."""
    from argon2.exceptions import Argon2Error, InvalidHashError

    if not hashed:
        # Spend the same time as a real check, so timing does not reveal unknown users.
        hashed = _dummy_hash()
        password = password + "\x00"
    try:
        return bool(_hasher().verify(hashed, password))
    except (Argon2Error, InvalidHashError):
        return False


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidArgumentError(
            f"the password is too short ({len(password)} characters)",
            hint=f"use at least {MIN_PASSWORD_LENGTH} characters",
        )


def new_token() -> str:
    """A personal API token: a recognisable prefix and 256 random bits."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """What the store keeps of a token or session id (hex SHA-256)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
