"""Real receivers for the hub's alerts: an SMTP server (aiosmtpd) and an HTTP webhook.

Both listen on 127.0.0.1, record what they get in arrival order and let a test wait for
it; either can be stopped and started again on the same port (a server down, then back).
"""

from __future__ import annotations

import json
import socket
import threading
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Record:
    def __init__(self) -> None:
        self.items: list[Any] = []
        self.cond = threading.Condition()

    def add(self, item: Any) -> None:
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def wait_count(self, n: int, timeout: float = 15.0) -> list[Any]:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.items) >= n, timeout):
                raise AssertionError(f"expected {n} received, got {len(self.items)}: {self.items}")
            return list(self.items)

    def snapshot(self) -> list[Any]:
        with self.cond:
            return list(self.items)


class SmtpReceiver:
    """An SMTP server that accepts AUTH LOGIN/PLAIN for one account, without TLS."""

    def __init__(
        self, port: int | None = None, user: str = "hub", password: str = "s3cret"
    ) -> None:
        self.port = port or free_port()
        self.user, self.password = user, password
        self.record = _Record()
        self.envelopes: list[tuple[str, list[str]]] = []
        self._controller: Controller | None = None

    def _auth(self, _server: Any, _session: Any, _env: Any, _mech: str, data: Any) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == self.user
            and data.password.decode() == self.password
        )
        return AuthResult(success=ok)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.record.add(message_from_bytes(envelope.content))
        return "250 OK"

    def start(self) -> SmtpReceiver:
        self._controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self._auth,
            auth_require_tls=False,
            auth_required=True,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages(self) -> list[Message]:
        return self.record.snapshot()

    def wait_count(self, n: int, timeout: float = 15.0) -> list[Message]:
        return self.record.wait_count(n, timeout)


class WebhookReceiver:
    """An HTTP server recording each POST's headers and JSON body; ``fail`` answers 500."""

    def __init__(self) -> None:
        self.record = _Record()
        self.fail = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if receiver.fail:
                    self.send_response(500)
                    self.end_headers()
                    return
                receiver.record.add({"headers": dict(self.headers), "json": json.loads(body)})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def bodies(self) -> list[dict[str, Any]]:
        return [r["json"] for r in self.record.snapshot()]

    def wait_count(self, n: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        return self.record.wait_count(n, timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
