from __future__ import annotations

from argon2 import PasswordHasher

from marketplace.accounts.passwords import (
    common_passwords,
    hash_password,
    needs_rehash,
    password_problems,
    verify_password,
)


def test_hash_is_argon2id_at_owasp_minimum_parameters() -> None:
    encoded = hash_password("correct horse battery")
    assert encoded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert verify_password(encoded, "correct horse battery")
    assert not verify_password(encoded, "correct horse battery!")


def test_garbage_hash_never_verifies() -> None:
    assert not verify_password("not-a-hash", "anything at all")


def test_hash_with_old_parameters_needs_rehash() -> None:
    weaker = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash("pw-1234567")
    assert needs_rehash(weaker)
    assert not needs_rehash(hash_password("pw-1234567"))


def test_policy_length_and_common_list_only() -> None:
    assert password_problems("seven77") == ["Use at least 8 characters."]
    assert password_problems("aaaaaaaa") == []  # no composition rules
    assert password_problems("x" * 128) == []
    assert password_problems("x" * 129) == ["Use at most 128 characters."]
    assert password_problems("QWERTYUIOP") == ["This password is too common; choose another."]


def test_common_list_is_shipped_and_lowercase() -> None:
    words = common_passwords()
    assert len(words) >= 100
    assert all(word == word.lower() and len(word) >= 8 for word in words)
