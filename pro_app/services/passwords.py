"""Password hashing with argon2id and explicitly chosen parameters."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2id with the RFC 9106 "second recommended" profile scaled to a small server:
# 64 MiB of memory, 3 passes, 2 lanes, 16-byte salt, 32-byte hash (about 60 ms here).
HASHER = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=2, hash_len=32, salt_len=16)

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128


def hash_password(password: str) -> str:
    """The argon2id hash (with its parameters and salt) to store."""
    return HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """Whether the password matches; never raises for a wrong or malformed hash."""
    try:
        return HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether the hash was made with older parameters and should be replaced at sign-in."""
    return HASHER.check_needs_rehash(stored_hash)
