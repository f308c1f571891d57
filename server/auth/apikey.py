"""API key format: generation, parsing, Argon2id hashing and constant-time verification."""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

KEY_MARK = "nz_"
PREFIX_CHARS = 8
SECRET_CHARS = 40
_ALPHABET = string.ascii_letters + string.digits
_KEY_RE = re.compile(r"nz_([A-Za-z0-9]{8})([A-Za-z0-9]{32,128})")
_PREFIX_RE = re.compile(r"nz_[A-Za-z0-9]{8}")

# OWASP's minimum for Argon2id (m=19 MiB, t=2, p=1): memory-hard, about 20 ms here.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


@dataclass(frozen=True, slots=True)
class PresentedKey:
    """A syntactically valid key as a client presented it."""

    prefix: str
    secret: str

    @property
    def full(self) -> str:
        """The whole key string."""
        return f"{self.prefix}{self.secret}"

    @property
    def digest(self) -> str:
        """SHA-256 of the whole key: the key-cache index (never stored)."""
        return hashlib.sha256(self.full.encode()).hexdigest()

    def __repr__(self) -> str:
        return f"PresentedKey(prefix={self.prefix!r})"


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def generate_key() -> PresentedKey:
    """A fresh key: `nz_` + 8-character prefix + 40-character secret."""
    return PresentedKey(prefix=KEY_MARK + _random(PREFIX_CHARS), secret=_random(SECRET_CHARS))


def parse_key(value: str) -> PresentedKey | None:
    """Split a presented key, or None when it is not shaped like one of ours."""
    match = _KEY_RE.fullmatch(value)
    if match is None:
        return None
    return PresentedKey(prefix=KEY_MARK + match.group(1), secret=match.group(2))


def parse_bearer(header: str | None) -> PresentedKey | None:
    """The key in an `Authorization: Bearer …` header, or None when absent or malformed."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return parse_key(token.strip())


def is_prefix(value: str) -> bool:
    """Whether `value` looks like a key prefix (`nz_` + 8 characters)."""
    return _PREFIX_RE.fullmatch(value) is not None


def hash_key(key: PresentedKey) -> str:
    """The Argon2id hash to store for a new key."""
    return _HASHER.hash(key.full)


def verify_key(stored_hash: str, key: PresentedKey) -> bool:
    """Constant-time check of a presented key against its stored hash (slow: run in a thread)."""
    try:
        return _HASHER.verify(stored_hash, key.full)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
