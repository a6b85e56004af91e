"""Staff passwords are stored with argon2id at the documented cost, and checked safely."""

from __future__ import annotations

import pytest
from argon2 import extract_parameters

from pro_app.services import passwords

pytestmark = pytest.mark.real_password_hashes


def test_hashes_use_argon2id_with_the_documented_parameters() -> None:
    stored = passwords.hash_password("correct horse battery")
    parameters = extract_parameters(stored)
    assert stored.startswith("$argon2id$")
    assert (parameters.memory_cost, parameters.time_cost, parameters.parallelism) == (65536, 3, 2)
    assert (parameters.hash_len, parameters.salt_len) == (32, 16)


def test_verify_accepts_the_password_and_refuses_anything_else() -> None:
    stored = passwords.hash_password("correct horse battery")
    assert passwords.verify_password(stored, "correct horse battery")
    assert not passwords.verify_password(stored, "correct horse batterY")
    assert not passwords.verify_password("not a hash", "correct horse battery")


def test_a_hash_made_with_lighter_parameters_is_replaced_at_sign_in() -> None:
    light = "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"
    assert passwords.needs_rehash(light)
    assert not passwords.needs_rehash(passwords.hash_password("x" * 12))
