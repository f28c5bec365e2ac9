"""Signed permission snapshots: the hub's Ed25519 keys, signing and the node's checks.

The hub builds one snapshot per machine (the data types are in
``gateway.core.snapshot``), signs it with its Ed25519 key and publishes it retained. A
node holds only the hub's public key: it accepts a snapshot only if the signature holds,
it is newer than the one it has - by ``(epoch, version)``: the hub moves its epoch
forward at every start, so a hub restored from a backup (older versions) is still
believed - and the validity end is still ahead. The signature covers the exact payload
bytes (base64 in the wire message), so no JSON canonicalisation has to agree between hub
and node.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from gateway.contract.core import CONTRACT_VERSION, ContractError, dumps, loads_object
from gateway.core.clock import iso
from gateway.core.snapshot import Snapshot


class SnapshotRejected(ContractError):
    """A snapshot the node must not use; ``reason`` is one word for logs and events."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"snapshot rejected ({reason}): {detail}")
        self.reason = reason
        self.detail = detail


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def write_keypair(private_path: Path, public_path: Path) -> None:
    """Create the hub's signing key (mode 0600) and the public key nodes are given."""
    key = generate_key()
    private_path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    private_path.touch(mode=0o600, exist_ok=True)
    private_path.write_bytes(pem)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(Path(path).read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 public key")
    return key


def sign_snapshot(snapshot: Snapshot, key: Ed25519PrivateKey) -> bytes:
    """The wire message: ``{"v", "alg", "payload": b64(json), "sig": b64(ed25519)}``."""
    payload = dumps({"v": CONTRACT_VERSION, **snapshot.to_dict()})
    return dumps(
        {
            "v": CONTRACT_VERSION,
            "alg": "Ed25519",
            "payload": base64.b64encode(payload).decode(),
            "sig": base64.b64encode(key.sign(payload)).decode(),
        }
    )


# Bounds on a snapshot message, checked before any parsing: anyone who may publish on
# the snapshot topic could otherwise make a node spend its memory or its stack. A
# snapshot of a large lab (a thousand members with badges) is about 400 KB; 4 MiB leaves
# room to grow. The real structure is 4 levels deep; 32 rejects only crafted input,
# long before the JSON decoder would hit Python's recursion limit.
MAX_SNAPSHOT_BYTES = 4 * 1024 * 1024
MAX_SNAPSHOT_DEPTH = 32
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _json_depth(data: bytes) -> int:
    """Deepest nesting of ``[]``/``{}`` outside strings, without recursion."""
    depth = deepest = 0
    for c in _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS):
        depth += 1 if c in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _bounded_object(data: bytes | str, what: str) -> dict[str, Any]:
    """A JSON object within the size and depth bounds, else ``SnapshotRejected``."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    if len(raw) > MAX_SNAPSHOT_BYTES:
        raise SnapshotRejected(
            "malformed", f"{what} is {len(raw)} bytes, over the {MAX_SNAPSHOT_BYTES}-byte limit"
        )
    if _json_depth(raw) > MAX_SNAPSHOT_DEPTH:
        raise SnapshotRejected(
            "malformed", f"{what} is nested deeper than {MAX_SNAPSHOT_DEPTH} levels"
        )
    try:
        return loads_object(raw, what)
    except ContractError as exc:
        raise SnapshotRejected("malformed", str(exc)) from exc
    except RecursionError as exc:  # belt and braces: the depth check should prevent it
        raise SnapshotRejected("malformed", f"{what} is nested too deeply") from exc


def parse_snapshot(body: Mapping[str, Any]) -> Snapshot:
    """The snapshot a signed payload's dict describes; ``malformed`` rejection if it
    does not describe one."""
    try:
        return Snapshot.from_dict(body)
    except (KeyError, TypeError, ValueError) as exc:
        raise SnapshotRejected("malformed", f"{type(exc).__name__}: {exc}") from exc


def verify_snapshot(
    message: bytes | str,
    key: Ed25519PublicKey,
    *,
    now: datetime,
    machine_id: str,
    current_version: int | None = None,
    current_epoch: int | None = None,
) -> Snapshot:
    """Return the snapshot in ``message`` or raise :class:`SnapshotRejected` saying why.

    ``current_epoch`` and ``current_version`` describe the snapshot the node holds; a new
    one must be later by ``(epoch, version)``: a higher epoch wins whatever its version.
    A held snapshot without an epoch counts as epoch 0.
    """
    outer = _bounded_object(message, "snapshot message")
    if not all(isinstance(outer.get(k), str) for k in ("alg", "payload", "sig") if k in outer):
        raise SnapshotRejected("malformed", "alg, payload and sig must be strings")
    if "sig" not in outer or not outer.get("sig"):
        raise SnapshotRejected("unsigned", "the message carries no signature")
    if outer.get("alg") != "Ed25519":
        raise SnapshotRejected("unsigned", f"unsupported algorithm {outer.get('alg')!r}")
    try:
        payload = base64.b64decode(outer["payload"], validate=True)
        sig = base64.b64decode(outer["sig"], validate=True)
    except (KeyError, TypeError, binascii.Error) as exc:
        raise SnapshotRejected("malformed", f"payload or signature is not base64: {exc}") from exc
    try:
        key.verify(sig, payload)
    except InvalidSignature as exc:
        raise SnapshotRejected("forged", "the signature does not match the hub's key") from exc
    snap = parse_snapshot(_bounded_object(payload, "signed payload"))
    if snap.machine.id != machine_id:
        raise SnapshotRejected(
            "wrong_machine", f"made for machine {snap.machine.id!r}, this node is {machine_id!r}"
        )
    if current_version is not None:
        held = (current_epoch or 0, current_version)
        if snap.order <= held:
            raise SnapshotRejected(
                "older",
                f"epoch {snap.epoch} version {snap.version} is not newer than the "
                f"held epoch {held[0]} version {held[1]}",
            )
    if snap.valid_until <= now:
        raise SnapshotRejected("expired", f"valid until {iso(snap.valid_until)}, now {iso(now)}")
    return snap
