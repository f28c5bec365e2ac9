"""The sections a hub file and a node file share: the site name and the MQTT link.

Both ends must agree on them (the site is part of every topic), so they are read by the
same code with the same checks.
"""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

from gateway.config.loader import Section
from gateway.config.models import MqttConfig, default_of
from gateway.contract import default_prefix

_SITE = re.compile(r"^[a-z0-9-]+$")
MQTT_KEYS = ("url", "prefix", "username", "password", "client_id", "reconnect_min", "reconnect_max")
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
    )
