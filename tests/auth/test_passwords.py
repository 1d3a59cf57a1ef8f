"""Password hashing and policy."""

import pytest
from argon2 import PasswordHasher

from inclusive.auth.passwords import hash_password, needs_rehash, password_problem, verify_password


def test_hashes_are_argon2id_with_at_least_46_mib():
    encoded = hash_password("a long enough pass phrase")
    assert encoded.startswith("$argon2id$")
    params = dict(p.split("=") for p in encoded.split("$")[3].split(","))
    assert int(params["m"]) >= 46 * 1024
    assert verify_password(encoded, "a long enough pass phrase")
    assert not verify_password(encoded, "a long enough pass phrasE")


def test_missing_or_broken_hashes_never_verify():
    assert not verify_password(None, "anything at all")
    assert not verify_password("not-a-hash", "anything at all")


def test_weaker_hashes_are_upgraded():
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash("x" * 12)
    assert needs_rehash(weak)
    assert not needs_rehash(hash_password("x" * 12))


@pytest.mark.parametrize(
    ("password", "inputs", "refused"),
    [
        ("short1!", [], True),
        ("password1234", [], True),
        ("1234567890", [], True),
        ("qwertyuiop", [], True),
        ("mariasilva2024", ["maria.silva@example.org", "Maria Silva"], True),
        ("x" * 300, [], True),
        ("correct horse battery staple", [], False),
        ("river-lantern-orchard-42", [], False),
    ],
)
def test_policy(app, password, inputs, refused):
    assert (password_problem(password, inputs) is not None) is refused
