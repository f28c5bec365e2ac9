"""Test doubles for hardware: they let the real drivers run in CI, off a Raspberry Pi."""
