"""Certification levels and account roles: the words access decisions are made of.

A member's level on a certification group decides what they may do on its machines, at
the node (offline, from the snapshot), at the hub (who may certify whom) and on the web
pages. The numbers travel in snapshots, events and the database, so they are written
here once.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final


class Level(IntEnum):
    """A member's certification level on a group; compares with the stored integers."""

    NONE = 0  # not certified: never opens a machine
    SUPERVISED = 1  # only while a staff member is present
    AUTONOMOUS = 2
    TRAINER = 3  # may also certify others (up to AUTONOMOUS) at the machine


LEVELS: Final = tuple(Level)
#: What a trainer grants by certifying at a machine; TRAINER is granted by the fabmanager.
CERTIFY_LEVELS: Final = (Level.SUPERVISED, Level.AUTONOMOUS)
#: The text config files and pages explain the numbers with.
LEVELS_TEXT: Final = "0 none, 1 supervised, 2 autonomous, 3 trainer"

#: Account roles on the hub's web pages. Every account is a member; the others are stored.
ROLES: Final = ("member", "trainer", "fabmanager", "accountant", "admin")
STORED_ROLES: Final = ("trainer", "fabmanager", "accountant", "admin")
