"""A real OctoPrint with its bundled virtual printer, for the OctoPrint driver's tests.

OctoPrint is AGPL and pins its own Flask, so it must never be installed into our
environment: it gets a virtualenv of its own, made once per machine and cached
(``$FABGATE_OCTOPRINT_VENV``, else ``~/.cache/fabgate-test/octoprint-venv``), because
``pip install octoprint`` takes tens of seconds and needs the package index.

Readiness is found by polling HTTP with a deadline: OctoPrint offers no readiness
signal a parent process can wait on (no sd_notify, no ready file), and its push API is a
SockJS websocket that would need a client library of its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

API_KEY = "FABGATETEST0123456789ABCDEF01234"
INSTALL_TIMEOUT_S = 900.0
READY_TIMEOUT_S = 90.0
_COMPLETE_MARKER = ".fabgate-complete"
# The tests authenticate with the global API key (``api.key``), which OctoPrint says
# stops working in 1.13; a per-app key would need a user account and a login flow.
REQUIREMENT = "octoprint>=1.10,<1.13"


class OctoPrintUnavailable(RuntimeError):
    """OctoPrint cannot be installed or started here; the message says why and how to fix."""


def venv_dir() -> Path:
    override = os.environ.get("FABGATE_OCTOPRINT_VENV")
    if override:
        return Path(override).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "fabgate-test" / "octoprint-venv"


def ensure_octoprint(venv: Path | None = None) -> tuple[Path, float]:
    """The ``octoprint`` executable, installing it first if needed.

    Returns the executable and the seconds spent installing (0 when cached). A lock file
    serialises concurrent test runs on one machine, and a marker written last tells a
    complete venv from one whose install was interrupted (which is rebuilt).
    """
    venv = venv or venv_dir()
    exe = venv / "bin" / "octoprint"
    marker = venv / _COMPLETE_MARKER
    if _complete(marker, exe):
        return exe, 0.0
    venv.parent.mkdir(parents=True, exist_ok=True)
    lock_path = venv.parent / f"{venv.name}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _complete(marker, exe):  # another run finished it while we waited
            return exe, 0.0
        started = time.monotonic()
        if venv.exists():
            shutil.rmtree(venv)
        _run_install([sys.executable, "-m", "venv", str(venv)], "create a virtualenv")
        _run_install(
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--quiet",
                "--retries",
                "2",
                "--timeout",
                "30",
                REQUIREMENT,
            ],
            f"pip install {REQUIREMENT}",
        )
        if not exe.exists():
            raise OctoPrintUnavailable(f"pip installed octoprint but {exe} is missing")
        marker.write_text(json.dumps({"requirement": REQUIREMENT, "installed_at": time.time()}))
        return exe, time.monotonic() - started


def _complete(marker: Path, exe: Path) -> bool:
    """A venv counts only if its install finished, for the requirement we ask today."""
    try:
        stamp = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(stamp, dict) and stamp.get("requirement") == REQUIREMENT and exe.exists()


def _run_install(cmd: list[str], what: str) -> None:
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise OctoPrintUnavailable(
            f"could not {what}: no result within {INSTALL_TIMEOUT_S:.0f} s "
            "(is the package index reachable?)"
        ) from None
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise OctoPrintUnavailable(f"could not {what} (exit {done.returncode}):\n{tail}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_basedir(basedir: Path, api_key: str = API_KEY) -> None:
    """A config that starts without the wizard, offline, and on the virtual printer.

    Plugins that call home or scan the network are disabled: the test machine may have
    no internet, and they only slow the start. The virtual printer's default line
    throttle is lowered so that small test files print in a couple of seconds; test
    files set their own pace with G4 dwells, which the virtual printer honours.
    """
    basedir.mkdir(parents=True, exist_ok=True)
    config = {
        "server": {
            "firstRun": False,
            "onlineCheck": {"enabled": False},
            "pluginBlacklist": {"enabled": False},
        },
        "api": {"key": api_key},
        "serial": {"port": "VIRTUAL", "baudrate": 115200, "autoconnect": True},
        "plugins": {
            "_disabled": [
                "announcements",
                "softwareupdate",
                "tracking",
                "pluginmanager",
                "discovery",
                "firmware_check",
                "achievements",
                "backup",
                "health_check",
                "errortracking",
            ],
            "virtual_printer": {"enabled": True, "okAfterResend": False, "throttle": 0.001},
        },
    }
    # JSON is valid YAML, so no YAML writer is needed here.
    (basedir / "config.yaml").write_text(json.dumps(config, indent=2))


class OctoPrintServer:
    """One ``octoprint serve`` process on a free loopback port, with its own basedir."""

    def __init__(self, exe: Path, basedir: Path, *, api_key: str = API_KEY) -> None:
        self.exe = exe
        self.basedir = basedir
        self.api_key = api_key
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = basedir / "serve.log"
        self.startup_s = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Start and wait until the API answers and the virtual printer is Operational."""
        write_basedir(self.basedir, self.api_key)
        self.port = free_port()
        started = time.monotonic()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self.exe),
                    "serve",
                    "--iknowwhatimdoing",
                    "--basedir",
                    str(self.basedir),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        try:
            self._wait_ready(started + timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - started

    def _wait_ready(self, deadline: float) -> None:
        last = "no answer yet"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise OctoPrintUnavailable(
                    f"octoprint exited with {self.process.returncode} while starting:\n"
                    f"{self.log_tail()}"
                )
            try:
                state = self.get("/api/connection")["current"]["state"]
                if state == "Operational":
                    return
                last = f"printer state {state!r}"
            except (OSError, http.client.HTTPException, ValueError, KeyError, TypeError) as e:
                last = f"{type(e).__name__}: {e}"
            time.sleep(0.1)
        raise OctoPrintUnavailable(
            f"OctoPrint not ready within the deadline ({last}):\n{self.log_tail()}"
        )

    def get(self, path: str) -> dict:
        """A plain GET that does not go through the code under test."""
        request = urllib.request.Request(self.url + path, headers={"X-Api-Key": self.api_key})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=5) as response:
            return json.loads(response.read())

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """Die the hard way, as a crash or a pulled plug would: no goodbye to clients."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop politely, then by force; safe to call more than once."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def __enter__(self) -> OctoPrintServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def gcode(dwells: int, dwell_ms: int = 100) -> bytes:
    """A small print whose length is set by G4 dwells, not by simulated moves.

    The virtual printer sleeps for G4 but not for moves, so ``dwells * dwell_ms`` is the
    print's duration, and each dwell line advances the file position (the progress).
    """
    lines = ["; fabgate test print", "G21", "G90", "G28"]
    for i in range(dwells):
        lines.append(f"G1 X{i % 50} Y{i % 50} F6000")
        lines.append(f"G4 P{dwell_ms}")
    lines.append("M84")
    return ("\n".join(lines) + "\n").encode()
