"""A cheap password hasher, for tests whose subject is not password hashing.

Argon2id with the library's defaults costs about 0.15 s per hash and per log-in on a
small machine, and a test hub with one account per role makes five before its first
request. The hashes these tests make are only ever checked by the same code, whatever
the cost parameters (they are stored in each hash), so a cheap hasher changes nothing
but time. ``tests/test_auth.py`` keeps the real one where the parameters are the point.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from argon2 import PasswordHasher

from gateway.hub import accounts


def cheap_hasher() -> PasswordHasher:
    """Argon2id at its smallest cost: one pass over 1 MiB."""
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@contextmanager
def cheap_hashing() -> Iterator[PasswordHasher]:
    """Make the hub hash and check passwords with :func:`cheap_hasher` inside the block."""
    hasher = cheap_hasher()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(accounts, "hasher", hasher)
        yield hasher
