"""Broker accounts: Mosquitto's password file, made once and kept, and the clear passwords.

Each account's password is random and made only once: a second run keeps every entry of
the password file as it is (a node configured last month must still log in), adds one for
each new account and leaves entries it does not know alone (reported, never deleted: an
operator may have added one with ``mosquitto_passwd``). The clear password of a new
account is written to ``credentials/<user>.yaml`` (mode 0600) beside the password file,
as the ``mqtt:`` lines to merge into that node's (or the hub's) configuration; it is never
printed, since a provisioning script's output often ends up in a log.

The hash is Mosquitto 2's own ``$7$`` format, PBKDF2-HMAC-SHA512:
``$7$<iterations>$<base64 salt>$<base64 hash>``, with a 12-byte salt and 101 iterations
as ``mosquitto_passwd`` writes them. The passwords are 32 random bytes, so more
iterations would only slow every log-in down.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ITERATIONS = 101
SALT_BYTES = 12
PASSWORD_BYTES = 32
CREDENTIALS_DIR = "credentials"


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The ``$7$`` hash Mosquitto 2 checks a log-in against."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def matches(password: str, hashed: str) -> bool:
    """Whether a ``$7$`` entry is the hash of ``password`` (with that entry's salt)."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] != "7" or not parts[2].isdigit():
        return False
    try:
        salt = base64.b64decode(parts[3], validate=True)
    except ValueError:
        return False
    return secrets.compare_digest(
        hash_password(password, salt=salt, iterations=int(parts[2])), hashed
    )


def new_password() -> str:
    """Letters, digits, '-' and '_' only: safe in YAML, a shell and a password file."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def read_password_file(path: Path) -> dict[str, str]:
    """``user -> hash`` of an existing password file, in its order ({} if missing)."""
    if not path.exists():
        return {}
    entries: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user or not hashed:
            raise ValueError(f"{path}:{number}: expected a 'user:hash' line")
        entries[user] = hashed
    return entries


@dataclass(frozen=True)
class Account:
    """A broker account: its username, and what its credentials file says it is for."""

    user: str
    purpose: str  # e.g. "node laser-1 (machine laser-1)"
    config: str  # the configuration file the lines go into
    # A password the site already chose (the hub's, from hub.yaml): the entry follows it,
    # no credentials file is written. None: a random one, made once.
    password: str | None = field(default=None, repr=False)


@dataclass
class AccountsReport:
    created: list[tuple[str, Path]] = field(default_factory=list)  # user, credentials file
    kept: list[str] = field(default_factory=list)
    from_config: list[str] = field(default_factory=list)  # set from a configured password
    unknown: list[str] = field(default_factory=list)  # in the file, not in the site


def credentials_text(account: Account, password: str, site: str) -> str:
    return (
        f"# Broker account of {account.purpose} on site {site}, made by\n"
        "# `fabgate deploy mosquitto`. Merge these lines into the mqtt: section of\n"
        f"# {account.config}, then delete this file: the broker keeps only a hash.\n"
        "mqtt:\n"
        f"  username: {account.user}\n"
        f'  password: "{password}"\n'
    )


def _write_private(path: Path, text: str) -> None:
    """Created with mode 0600 from the start, not chmod-ed after being readable."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _password_of(credentials: Path) -> str | None:
    """The clear password an earlier run left in a credentials file, if still there."""
    if not credentials.exists():
        return None
    for line in credentials.read_text(encoding="utf-8").splitlines():
        key, _, value = line.strip().partition(":")
        if key == "password" and value.strip():
            return value.strip().strip('"')
    return None


def ensure_accounts(passwd: Path, accounts: Sequence[Account], site: str) -> AccountsReport:
    """Make the password file hold every account, keeping the entries it has.

    An account missing from the password file but whose credentials file is still there
    (the password file was lost, the credentials not yet handed out) gets that password
    again rather than a new one, so the credentials file never lies.
    """
    existing = read_password_file(passwd)
    credentials_dir = passwd.parent / CREDENTIALS_DIR
    report = AccountsReport()
    entries = dict(existing)
    for account in accounts:
        if account.password is not None:
            # The site's own choice: keep the entry while it still matches, else follow it.
            if account.user in existing and matches(account.password, existing[account.user]):
                report.kept.append(account.user)
            else:
                entries[account.user] = hash_password(account.password)
                report.from_config.append(account.user)
            continue
        if account.user in existing:
            report.kept.append(account.user)
            continue
        credentials = credentials_dir / f"{account.user}.yaml"
        password = _password_of(credentials)
        if password is None:
            password = new_password()
            credentials_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            _write_private(credentials, credentials_text(account, password, site))
        entries[account.user] = hash_password(password)
        report.created.append((account.user, credentials))
    names = {a.user for a in accounts}
    report.unknown = [user for user in existing if user not in names]
    text = "".join(f"{user}:{hashed}\n" for user, hashed in entries.items())
    if not passwd.exists() or passwd.read_text(encoding="utf-8") != text:
        _write_private(passwd, text)
    return report
