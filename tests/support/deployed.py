"""A real Mosquitto running a site's own broker files, as ``fabgate deploy mosquitto`` makes them.

The command writes the settings, the ACL and the password file from a hub
configuration; only what is this machine's is chosen here: the listener on a free port
of 127.0.0.1 (``--plain-listener localhost --plain-port``, an option of the command, not
an edit of its output), the install directory (the output directory itself), and the
database and log (:class:`MosquittoProcess` appends its own, which win). So the ACL and
settings a test runs against are exactly what an installation gets.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import yaml

from gateway.cli import main
from gateway.demo.broker import free_port
from tests.support.mosquitto import MosquittoProcess
from tests.support.tls import Issued

__all__ = ["DeployedBroker", "deploy_broker", "run_deploy"]


def run_deploy(*args: str) -> tuple[int, str, str]:
    """``fabgate deploy mosquitto ARGS`` in this process: status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["deploy", "mosquitto", *args])
    return status, out.getvalue(), err.getvalue()


def read_credentials(directory: Path) -> dict[str, str]:
    """``user -> clear password`` from the credentials files the command wrote."""
    passwords = {}
    for path in sorted((directory / "credentials").glob("*.yaml")):
        mqtt = yaml.safe_load(path.read_text(encoding="utf-8"))["mqtt"]
        passwords[mqtt["username"]] = mqtt["password"]
    return passwords


@dataclass
class DeployedBroker:
    mosq: MosquittoProcess
    directory: Path  # the command's --out
    passwords: dict[str, str]
    port: int  # the plain listener, on 127.0.0.1
    tls_port: int | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        return f"mqtts://127.0.0.1:{self.tls_port}"

    def stop(self) -> None:
        self.mosq.stop()


def deploy_broker(
    workdir: Path,
    hub_config: Path,
    *,
    port: int | None = None,
    tls: Issued | None = None,
    ca: Path | None = None,
    tls_port: int | None = None,
    extra: tuple[str, ...] = (),
) -> DeployedBroker:
    """Generate the site's broker files into ``workdir/broker`` and start Mosquitto on them.

    ``tls`` (the broker's certificate, with ``ca`` its CA) adds the TLS listener on
    ``tls_port`` (default a free one); the plain listener stays, on 127.0.0.1 only.
    """
    directory = workdir / "broker"
    port = port or free_port("127.0.0.1")
    args = [
        "--config",
        str(hub_config),
        "--out",
        str(directory),
        "--install-dir",
        str(directory),
        "--plain-listener",
        "localhost",
        "--plain-port",
        str(port),
        *extra,
    ]
    if tls is not None:
        tls_port = tls_port or free_port("127.0.0.1")
        args += ["--tls-cert", str(tls.cert), "--tls-key", str(tls.key)]
        args += ["--tls-port", str(tls_port)]
        if ca is not None:
            args += ["--tls-ca", str(ca)]
    status, out, err = run_deploy(*args)
    assert status == 0, out + err
    conf = (directory / "fabgate.conf").read_text(encoding="utf-8")
    mosq = MosquittoProcess(port=port, workdir=workdir / "mosquitto", site_config=conf)
    mosq.start()
    return DeployedBroker(mosq, directory, read_credentials(directory), port, tls_port)
