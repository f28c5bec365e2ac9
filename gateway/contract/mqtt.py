"""A thin paho-mqtt 2.x wrapper shared by node, hub and CLI.

It fixes the choices every part of fablab-gateway must agree on: MQTT 3.1.1 (the
embedded demo broker speaks nothing newer), callback API version 2, automatic
reconnection with back-off, a last will, and re-subscription after every reconnect.
It does not queue messages of its own: paho keeps QoS 1 messages published while
offline in RAM only, so the node's journal, not this class, is the source of truth.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes], None]

# paho's reconnect back-off, in seconds: the first retry after RECONNECT_MIN_S, doubling
# up to RECONNECT_MAX_S. The defaults of the `mqtt.reconnect_min`/`reconnect_max` keys.
RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 15.0


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"broker URL {url!r}: expected mqtt://host:port or mqtts://host:port")
        tls = parts.scheme == "mqtts"
        return cls(parts.hostname, parts.port or (8883 if tls else 1883), tls)


@dataclass(frozen=True)
class TlsFiles:
    """What an ``mqtts://`` link trusts and shows: the CA that signed the broker's
    certificate (None: the system's CAs, for a broker with a public certificate) and an
    optional client certificate with its key, for a broker that asks for one."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    def context(self) -> ssl.SSLContext:
        """Certificate and host name checked; with a CA file, only that CA is trusted
        (a site's own CA must not make every public CA a broker of ours, nor the
        reverse)."""
        ctx = ssl.create_default_context(cafile=str(self.ca) if self.ca else None)
        if self.cert is not None:
            # No password: a service has no one to type it, and OpenSSL would prompt.
            ctx.load_cert_chain(self.cert, self.key, password=b"")
        return ctx


@dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes
    retain: bool = True
    qos: int = 1


class MqttLink:
    """One long-lived connection; handlers run on paho's network thread, so keep them short."""

    def __init__(
        self,
        url: str,
        client_id: str,
        *,
        username: str | None = None,
        password: str | None = None,
        will: Will | None = None,
        clean_session: bool = True,
        on_connect: Callable[[], None] | None = None,
        reconnect_min: float = RECONNECT_MIN_S,
        reconnect_max: float = RECONNECT_MAX_S,
        tls: TlsFiles | None = None,
    ) -> None:
        self.address = BrokerAddress.parse(url)
        if tls is not None and not self.address.tls:
            raise ValueError(f"broker URL {url!r}: TLS files are for an mqtts:// URL")
        self.client_id = client_id
        self.connected = threading.Event()
        self._on_connect_cb = on_connect
        self._subscriptions: dict[str, int] = {}
        self._stopping = False
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv311,
            clean_session=clean_session,
        )
        if username:
            self._client.username_pw_set(username, password)
        if self.address.tls:
            self._client.tls_set_context((tls or TlsFiles()).context())
        if will:
            self._client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        # paho annotates the delays int, but floats work: it only multiplies and compares
        # them (hence the untyped call). After the broker returns, the link is back within
        # reconnect_max (plus the connection itself).
        delay_set: Any = self._client.reconnect_delay_set
        delay_set(min_delay=reconnect_min, max_delay=reconnect_max)
        self._client.max_inflight_messages_set(100)
        self._client.max_queued_messages_set(0)
        self._client.on_connect = self._handle_connect
        self._client.on_disconnect = self._handle_disconnect

    def subscribe(
        self,
        topic_filter: str,
        handler: MessageHandler,
        qos: int = 1,
        *,
        retained: MessageHandler | None = None,
    ) -> None:
        """Register a handler; it is (re)subscribed on every connection.

        ``retained`` takes the messages the broker hands out as retained copies (at
        subscription, so again at every reconnection) instead of ``handler``; None
        gives them to ``handler`` like any other. A topic whose message is an act to do
        once (an event, a simulated tap, an acknowledgement) passes one: the broker's
        ACL cannot forbid the retain flag, so a client that sets it there would have
        its message acted on again at every reconnection.
        """

        def _callback(_c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
            target = retained if msg.retain and retained is not None else handler
            try:
                target(msg.topic, bytes(msg.payload))
            except Exception:  # a bad message must never kill the network thread
                log.exception("handler for %s failed on a message on %s", topic_filter, msg.topic)

        self._client.message_callback_add(topic_filter, _callback)
        self._subscriptions[topic_filter] = qos
        if self.connected.is_set():
            self._client.subscribe(topic_filter, qos)

    def start(self) -> None:
        """Connect in the background; returns at once, retries until stopped."""
        self._client.connect_async(self.address.host, self.address.port, keepalive=15)
        self._client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> paho.MQTTMessageInfo | None:
        """Publish if connected; ``None`` when offline (the caller keeps the data)."""
        if not self.connected.is_set():
            return None
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            return None
        return info

    def stop(self, final: tuple[str, bytes] | None = None, timeout: float = 2.0) -> None:
        """Disconnect cleanly, first publishing ``final`` (topic, payload) retained."""
        try:
            if final and self.connected.is_set():
                info = self._client.publish(final[0], final[1], qos=1, retain=True)
                info.wait_for_publish(timeout)
        except (RuntimeError, ValueError):
            log.warning("could not publish the final status before disconnecting")
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()
        self.connected.clear()

    def _handle_connect(
        self, client: paho.Client, _u: object, _flags: object, reason: ReasonCode, _props: object
    ) -> None:
        if reason.is_failure:
            log.warning(
                "broker %s:%s refused the connection: %s",
                self.address.host,
                self.address.port,
                reason,
            )
            return
        log.info(
            "connected to broker %s:%s as %s", self.address.host, self.address.port, self.client_id
        )
        for topic_filter, qos in self._subscriptions.items():
            client.subscribe(topic_filter, qos)
        self.connected.set()
        if self._on_connect_cb:
            try:
                self._on_connect_cb()
            except Exception:
                log.exception("on_connect callback failed")

    def _handle_disconnect(
        self, _c: paho.Client, _u: object, _flags: object, reason: ReasonCode, _props: object
    ) -> None:
        if self.connected.is_set() and not self._stopping:
            log.warning("lost the broker connection (%s); reconnecting", reason)
        self.connected.clear()
