"""Password hashing (argon2id) and the password policy."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask_babel import gettext as _
from zxcvbn import zxcvbn

MIN_LENGTH = 10
MAX_LENGTH = 256  # long enough for pass phrases, short enough that hashing stays cheap
MIN_STRENGTH = 3  # zxcvbn's score, 0..4: below 3 the password is common or easy to guess

# RFC 9106's second recommended profile: argon2id, 64 MiB, 3 passes, 4 lanes.
_hasher = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4)


def hash_password(password: str) -> str:
    """Return an argon2id hash of the password."""
    return _hasher.hash(password)


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash("a password nobody has, to spend the same time")


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password against its hash; with no hash, spend the same time and fail."""
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Tell whether a hash was made with weaker parameters than today's."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def password_problem(password: str, user_inputs: Iterable[str] = ()) -> str | None:
    """Return why a new password is refused, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return _("Use at least %(n)d characters.", n=MIN_LENGTH)
    if len(password) > MAX_LENGTH:
        return _("Use at most %(n)d characters.", n=MAX_LENGTH)
    inputs = [part for value in user_inputs if value for part in _words(value)]
    if _mostly_personal(password, inputs):
        return _("Do not build the password from your name or e-mail address.")
    if zxcvbn(password[:100], user_inputs=inputs)["score"] < MIN_STRENGTH:
        return _(
            "This password is too common or too easy to guess. Try a few unrelated words together."
        )
    return None


def _mostly_personal(password: str, words: list[str]) -> bool:
    # zxcvbn forgives "name + year"; we do not: strip the user's own words and see what is left.
    letters = original = re.sub(r"[^a-z]", "", password.lower())
    for word in sorted({re.sub(r"[^a-z]", "", w) for w in words}, key=len, reverse=True):
        if len(word) >= 3:
            letters = letters.replace(word, "")
    return letters != original and len(letters) < 4


def _words(value: str) -> list[str]:
    parts = [value.lower()]
    for sep in ("@", ".", " ", "-", "_"):
        parts = [piece for part in parts for piece in part.split(sep)]
    return [value.lower(), *[p for p in parts if len(p) >= 3]]
