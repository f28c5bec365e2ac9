"""Where alert notices go: an SMTP server, an HTTP webhook. Each ``send`` raises on failure.

The alert loop (``gateway.hub.alerting``) sends one notice at a time and treats any
exception as "not delivered, try later", so a channel only has to say whether it worked.
Both use the standard library (``smtplib``, ``urllib``) with a timeout, so an
unreachable server costs the loop at most that long.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.request
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any, Protocol

from gateway.config.models import AlertsConfig, EmailConfig, WebhookConfig
from gateway.core.clock import iso
from gateway.policies.alerts import (
    FIRE,
    INGEST_STALLED,
    JOURNAL_BACKLOG,
    NODE_OFFLINE,
    REFUSALS,
    SNAPSHOT_AGE,
    Notice,
)

TITLES = {
    NODE_OFFLINE: "node {subject} offline",
    JOURNAL_BACKLOG: "node {subject}: journal backlog",
    INGEST_STALLED: "hub ingest stalled",
    SNAPSHOT_AGE: "node {subject}: snapshot near its maximum age",
    REFUSALS: "messages refused from node {subject}",
}
# What to do, for the people who read the notice (docs/operations.md says more).
ADVICE = {
    NODE_OFFLINE: "Check the node's power, network and `journalctl -u fabgate-node`.",
    JOURNAL_BACKLOG: "Events wait on the node: check its broker link and the hub's ingest.",
    INGEST_STALLED: "The hub is not storing what it receives: check its log, disk and `/healthz`.",
    SNAPSHOT_AGE: "The node has not had a fresh snapshot: it will soon deny every tap. "
    "Check its broker link and the hub's snapshot loop.",
    REFUSALS: "The hub refused messages from this node: see the refusals on the board "
    "(a wrong configuration, a bug, or someone else speaking for the node).",
}


def title(notice: Notice) -> str:
    return TITLES.get(notice.kind, notice.kind + " {subject}").format(subject=notice.subject)


def summary(notice: Notice, site: str) -> str:
    state = "FIRING" if notice.action == FIRE else "RECOVERED"
    return f"[fabgate {site}] {state}: {title(notice)}"


def payload(notice: Notice, site: str, now: datetime) -> dict[str, Any]:
    """The webhook's JSON body (documented in docs/operations.md)."""
    return {
        "site": site,
        "kind": notice.kind,
        "subject": notice.subject,
        "state": "firing" if notice.action == FIRE else "recovered",
        "summary": summary(notice, site),
        "detail": notice.detail,
        "since": iso(notice.since) if notice.since else None,
        "at": iso(now),
    }


class Channel(Protocol):
    name: str

    def send(self, notice: Notice, site: str, now: datetime) -> None: ...


class EmailChannel:
    name = "email"

    def __init__(self, cfg: EmailConfig) -> None:
        self.cfg = cfg

    def message(self, notice: Notice, site: str, now: datetime) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = summary(notice, site)
        msg["From"] = self.cfg.sender
        msg["To"] = ", ".join(self.cfg.to)
        msg["Date"] = format_datetime(now)
        msg["Message-ID"] = make_msgid(domain=self.cfg.sender.rpartition("@")[2])
        lines = [summary(notice, site), ""]
        if notice.detail:
            lines.append(notice.detail)
        if notice.since:
            lines.append(("Since: " if notice.action == FIRE else "At: ") + iso(notice.since))
        if notice.action == FIRE:
            lines += ["", ADVICE.get(notice.kind, "")]
        msg.set_content("\n".join(lines) + "\n")
        return msg

    def send(self, notice: Notice, site: str, now: datetime) -> None:
        cfg = self.cfg
        msg = self.message(notice, site, now)
        smtp: smtplib.SMTP
        if cfg.security == "ssl":
            smtp = smtplib.SMTP_SSL(
                cfg.host, cfg.port, timeout=cfg.timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        with smtp:
            if cfg.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if cfg.username is not None and cfg.password is not None:
                smtp.login(cfg.username, cfg.password)
            smtp.send_message(msg, from_addr=cfg.sender, to_addrs=list(cfg.to))


class WebhookChannel:
    name = "webhook"

    def __init__(self, cfg: WebhookConfig) -> None:
        self.cfg = cfg

    def send(self, notice: Notice, site: str, now: datetime) -> None:
        body = json.dumps(payload(notice, site, now)).encode()
        req = urllib.request.Request(self.cfg.url, data=body, method="POST")
        req.add_header("Content-Type", "application/json")
        req.add_header("User-Agent", "fabgate-hub")
        if self.cfg.secret is not None:
            req.add_header(self.cfg.secret_header, self.cfg.secret)
        # urlopen raises on 4xx/5xx (HTTPError) and on a refused or silent server.
        with urllib.request.urlopen(req, timeout=self.cfg.timeout) as resp:
            resp.read()


def channels(cfg: AlertsConfig) -> list[Channel]:
    out: list[Channel] = []
    if cfg.email is not None:
        out.append(EmailChannel(cfg.email))
    if cfg.webhook is not None:
        out.append(WebhookChannel(cfg.webhook))
    return out
