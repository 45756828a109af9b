"""Password hashing (argon2id at OWASP's minimum parameters) and the password policy (ASVS 5)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 8
MAX_LENGTH = 128

# OWASP Password Storage Cheat Sheet minimum for argon2id: m=19 MiB, t=2, p=1.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with other parameters than the current ones."""
    return _hasher.check_needs_rehash(password_hash)


# A real hash to verify against when the account does not exist, so a failed login for an
# unknown email takes as long as one for a known email.
DUMMY_HASH = _hasher.hash("not-a-real-password-for-timing")


@cache
def common_passwords() -> frozenset[str]:
    text = files("marketplace.accounts").joinpath("common-passwords.txt").read_text()
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


def password_problems(password: str) -> list[str]:
    """Why a new password is refused: length and common-password checks, no composition rules."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"Use at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        problems.append(f"Use at most {MAX_LENGTH} characters.")
    if password.lower() in common_passwords():
        problems.append("This password is too common; choose another.")
    return problems
