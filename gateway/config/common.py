"""The sections a hub file and a node file share: the site name and the MQTT link.

Both ends must agree on them (the site is part of every topic), so they are read by the
same code with the same checks.
"""

from __future__ import annotations

import re
import ssl
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from gateway.config.loader import Section
from gateway.config.models import MqttConfig, default_of
from gateway.contract import default_prefix

_SITE = re.compile(r"^[a-z0-9-]+$")
MQTT_KEYS = (
    "url",
    "prefix",
    "username",
    "password",
    "client_id",
    "reconnect_min",
    "reconnect_max",
    "tls_ca",
    "tls_cert",
    "tls_key",
)
_RECONNECT_CEILING = timedelta(hours=1)
_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
_URL_TEXT = "mqtt://host[:port] or mqtts://host[:port] (default ports 1883 and 8883)"


def site(top: Section) -> str:
    return top.text(
        "site",
        pattern=_SITE,
        what="a site name of lower-case letters, digits and '-' (used in MQTT topics)",
    )


def mqtt(top: Section, site_name: str, default_client_id: str) -> MqttConfig:
    sec = top.section("mqtt", MQTT_KEYS)
    url = sec.text("url", default_of(MqttConfig, "url"), what=_URL_TEXT)
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        sec.fail("url", _URL_TEXT + "; the port must be 1 to 65535", url)
    if (
        scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or port == 0
    ):
        hint = "; put credentials in mqtt.username and mqtt.password" if parts.username else ""
        sec.fail("url", _URL_TEXT + hint, url)
    host = parts.hostname
    port = port or _DEFAULT_PORTS[scheme]
    shown_host = f"[{host}]" if ":" in host else host
    prefix = sec.text("prefix", default_prefix(site_name))
    if any(c in prefix for c in "+#\0") or prefix.startswith("/") or "//" in prefix:
        sec.fail("prefix", "a topic prefix without '+', '#', a leading '/' or empty levels", prefix)
    if not prefix.endswith("/"):
        prefix += "/"
    username = sec.text("username", None)
    password = sec.text("password", None)
    if password is not None and username is None:
        sec.fail("username", "a username, since mqtt.password is set")
    client_id = sec.text("client_id", default_client_id)
    if any(c in client_id for c in "+#/ "):
        sec.fail("client_id", "a client id without '+', '#', '/' or spaces", client_id)
    reconnect_min = sec.duration(
        "reconnect_min", timedelta(seconds=default_of(MqttConfig, "reconnect_min"))
    )
    reconnect_max = sec.duration(
        "reconnect_max", timedelta(seconds=default_of(MqttConfig, "reconnect_max"))
    )
    if reconnect_max > _RECONNECT_CEILING:
        sec.fail("reconnect_max", "a duration of at most 1h", sec.raw("reconnect_max", None))
    if reconnect_max < reconnect_min:
        sec.fail(
            "reconnect_max",
            f"a duration no shorter than reconnect_min ({reconnect_min})",
            sec.raw("reconnect_max", None),
        )
    tls_ca, tls_cert, tls_key = _tls_files(sec, tls=scheme == "mqtts")
    return MqttConfig(
        url=f"{scheme}://{shown_host}:{port}",
        host=host,
        port=port,
        tls=scheme == "mqtts",
        prefix=prefix,
        username=username,
        password=password,
        client_id=client_id,
        reconnect_min=reconnect_min.total_seconds(),
        reconnect_max=reconnect_max.total_seconds(),
        tls_ca=tls_ca,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )


def _existing_file(sec: Section, key: str) -> Path | None:
    path: Path | None = sec.file_path(key, None)
    if path is not None and not path.is_file():
        sec.fail(key, "an existing file", str(path))
    return path


def _tls_files(sec: Section, *, tls: bool) -> tuple[Path | None, Path | None, Path | None]:
    """The TLS files, checked now: a CA file that does not load, or a key that is not
    the certificate's, would otherwise be a TLS error at every reconnection attempt."""
    ca, cert, key = (_existing_file(sec, k) for k in ("tls_ca", "tls_cert", "tls_key"))
    given = [k for k, v in (("tls_ca", ca), ("tls_cert", cert), ("tls_key", key)) if v]
    if given and not tls:
        sec.fail(given[0], "no value with an mqtt:// url (TLS files go with mqtts://)")
    if (cert is None) != (key is None):
        missing = "tls_key" if key is None else "tls_cert"
        other = "tls_cert" if key is None else "tls_key"
        sec.fail(missing, f"a file, since mqtt.{other} is set (a client certificate and its key)")
    if ca is not None:
        try:
            ssl.create_default_context(cafile=str(ca))
        except (ssl.SSLError, OSError, ValueError) as exc:
            sec.fail("tls_ca", "a PEM file of CA certificates", f"{ca}: {exc}")
    if cert is not None and key is not None:
        try:
            ssl.create_default_context().load_cert_chain(cert, key, password=b"")
        except (ssl.SSLError, OSError, ValueError) as exc:
            sec.fail(
                "tls_key",
                "the PEM private key of mqtt.tls_cert (and a PEM certificate there), not encrypted",
                f"{key}: {exc}",
            )
    return ca, cert, key
