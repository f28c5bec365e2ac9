"""Follow a 3D printer through OctoPrint's REST API.

Many fablab printers are already driven by OctoPrint, which owns the printer's USB
serial port: opening that port ourselves would reset the board mid-print (DTR), so a
node next to an OctoPrint printer watches it through OctoPrint instead. OctoPrint is
AGPL and pins its own Flask, so it never enters our environment: this module speaks its
documented REST API with the standard library only (``urllib``), which also keeps the
node's dependency list unchanged.

OctoPrint offers push updates only over a websocket (SockJS); plain polling of
``/api/job`` and ``/api/printer`` every couple of seconds is simpler, survives
OctoPrint restarts without reconnect logic, and is cheap for OctoPrint.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

from gateway.core.activity import Activity, MachineReport
from gateway.drivers.machines.base import MachineController

log = logging.getLogger(__name__)

NOT_CONNECTED = "printer not connected"


class OctoPrintError(Exception):
    """A request to OctoPrint failed.

    ``status`` is the HTTP status when OctoPrint answered, None when it did not (refused,
    timed out, connection lost, garbage): callers decide on the status (409 "printer not
    operational" is routine, 403 means the key is wrong) and show ``message`` to people.
    """

    def __init__(self, message: str, *, status: int | None = None, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.path = path

    def __str__(self) -> str:
        where = f" ({self.path})" if self.path else ""
        if self.status is None:
            return f"{self.message}{where}"
        return f"HTTP {self.status}{where}: {self.message}"


class OctoPrintClient:
    """A small, blocking client for the few OctoPrint endpoints a gateway needs.

    Every call has a timeout so that a hung OctoPrint can never stall the caller for
    longer than ``timeout`` seconds per network operation. Proxy variables from the
    environment are ignored on purpose: OctoPrint sits on the node's own LAN, and a
    system-wide HTTP proxy would either not reach it or see the API key.
    """

    def __init__(self, url: str, api_key: str, *, timeout: float = 5.0) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"OctoPrint URL must be http(s)://host[:port][/prefix], got {url!r}")
        # Keep a path prefix: OctoPrint is often served behind a reverse proxy at /octoprint.
        self.base_url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # -- endpoints ---------------------------------------------------------------------

    def version(self) -> dict[str, Any]:
        return self._json("GET", "/api/version")

    def printer(self) -> dict[str, Any]:
        """Printer state and temperatures; OctoPrint answers 409 while not connected."""
        return self._json("GET", "/api/printer")

    def job(self) -> dict[str, Any]:
        """Current job and its progress; answers even while the printer is offline."""
        return self._json("GET", "/api/job")

    def connection(self) -> dict[str, Any]:
        return self._json("GET", "/api/connection")

    def connect(self) -> None:
        """Connect to the printer with OctoPrint's saved port and baud rate settings."""
        self._json("POST", "/api/connection", {"command": "connect"})

    def disconnect(self) -> None:
        self._json("POST", "/api/connection", {"command": "disconnect"})

    def cancel(self) -> None:
        """Cancel the running or paused job; 409 when there is none."""
        self._json("POST", "/api/job", {"command": "cancel"})

    def pause(self, action: str = "pause") -> None:
        """Pause (``pause``), resume (``resume``) or toggle (``toggle``) the job.

        The action is always sent explicitly: OctoPrint's default is ``toggle``, which
        would resume a job that someone else paused a moment earlier.
        """
        if action not in ("pause", "resume", "toggle"):
            raise ValueError(f"unknown pause action {action!r}")
        self._json("POST", "/api/job", {"command": "pause", "action": action})

    def send_commands(self, commands: list[str]) -> None:
        """Send raw G-code lines to the printer (tests use it to provoke errors)."""
        self._json("POST", "/api/printer/command", {"commands": list(commands)})

    def upload_and_print(self, name: str, gcode: bytes) -> dict[str, Any]:
        """Upload ``gcode`` to OctoPrint's local storage as ``name`` and start printing it.

        Meant for tests and the demo: in a fablab, people send jobs from their slicer.
        """
        if not name or any(c in name for c in '"\r\n/\\'):
            raise ValueError(f"unusable file name {name!r}")
        boundary = f"fabgate-{uuid.uuid4().hex}"
        parts = [
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode()
            + gcode
            + b"\r\n",
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="select"\r\n\r\ntrue\r\n'
            ).encode(),
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="print"\r\n\r\ntrue\r\n'
            ).encode(),
            f"--{boundary}--\r\n".encode(),
        ]
        return self._request(
            "POST",
            "/api/files/local",
            b"".join(parts),
            f"multipart/form-data; boundary={boundary}",
        )

    # -- plumbing ----------------------------------------------------------------------

    def _json(self, method: str, path: str, payload: object = None) -> dict[str, Any]:
        body = None if payload is None else json.dumps(payload).encode()
        return self._request(method, path, body, "application/json" if body else None)

    def _request(
        self, method: str, path: str, body: bytes | None, content_type: str | None
    ) -> dict[str, Any]:
        """One request; every failure becomes an OctoPrintError with a readable message."""
        where = f"{method} {path}"
        request = urllib.request.Request(self.base_url + path, data=body, method=method)
        request.add_header("X-Api-Key", self.api_key)
        request.add_header("Accept", "application/json")
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as e:
            try:
                message = _error_message(e)
            finally:
                e.close()
            raise OctoPrintError(message, status=e.code, path=where) from None
        except urllib.error.URLError as e:
            raise OctoPrintError(self._transport_message(e.reason), path=where) from None
        except (OSError, http.client.HTTPException) as e:
            raise OctoPrintError(self._transport_message(e), path=where) from None
        if not raw.strip():
            return {}  # 204 No Content for commands
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise OctoPrintError(f"invalid JSON in answer: {raw[:60]!r}", path=where) from None
        if not isinstance(data, dict):
            raise OctoPrintError(
                f"unexpected answer: a JSON {type(data).__name__}, not an object", path=where
            )
        return data

    def _transport_message(self, reason: object) -> str:
        if isinstance(reason, ConnectionRefusedError):
            return "connection refused"
        if isinstance(reason, TimeoutError | socket.timeout):
            return f"no answer within {self.timeout:g} s (timed out)"
        if isinstance(reason, socket.gaierror):
            return f"unknown host: {reason}"
        if isinstance(reason, ConnectionError | http.client.HTTPException):
            return f"connection lost: {type(reason).__name__}: {reason}".rstrip(": ")
        return f"unreachable: {reason}"


def _error_message(e: urllib.error.HTTPError) -> str:
    """OctoPrint's own words from a JSON ``{"error": ...}`` body, else the HTTP reason."""
    try:
        raw = e.read(4096)
    except (OSError, http.client.HTTPException):
        raw = b""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str) and data["error"]:
        return data["error"]
    text = raw.decode("utf-8", "replace").strip()
    if text and len(text) <= 200 and not text.startswith("<"):
        return text
    return str(e.reason or "error")


# OctoPrint's state strings (job "state", printer "state.text"), by lower-case prefix.
# Cancelling and finishing still move the machine, so they count as busy.
_BUSY_PREFIXES = (
    "printing",
    "sending file to sd",
    "transferring file to sd",
    "starting",
    "resuming",
    "finishing",
    "cancelling",
)
_PAUSED_PREFIXES = ("paused", "pausing")
_CONNECTING_PREFIXES = ("opening serial", "detecting", "connecting")


def _mapping(value: Any) -> dict[str, Any]:
    """A JSON object from OctoPrint, or an empty one for anything else (null, a list)."""
    return value if isinstance(value, dict) else {}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _temperatures(printer: dict[str, Any] | None) -> dict[str, object]:
    temps = (printer or {}).get("temperature")
    if not isinstance(temps, dict):
        return {}
    out: dict[str, object] = {}
    for heater, reading in temps.items():
        if isinstance(reading, dict) and heater != "history":
            out[heater] = {
                "actual": _number(reading.get("actual")),
                "target": _number(reading.get("target")),
            }
    return out


def report_from(
    job: dict[str, Any], printer: dict[str, Any] | None, *, job_was_running: bool = False
) -> MachineReport:
    """Turn one ``/api/job`` answer (and ``/api/printer``, None on 409) into a report.

    Pure, so the mapping is tested without any server. Job fields are filled only while
    a job is running or paused: after a print OctoPrint keeps the file selected with
    completion 100, and an idle printer must not look as if it still had a job.

    ``data["job"]`` says whether a job exists, for the job tracker: "Cancelling" still
    moves the machine (BUSY) but the job is over. OctoPrint's "Cancelling" lasts a few
    milliseconds and is usually never seen, so when a job was running (``job_was_running``)
    and the printer is idle again, the completion tells how it ended: 100 after a finished
    print, none after a cancelled one; the detail says which, since billing differs.
    """
    state = job.get("state")
    state_text = state if isinstance(state, str) else ""
    flags: dict[str, Any] = {}
    if printer is not None:
        pstate = printer.get("state")
        if isinstance(pstate, dict):
            if isinstance(pstate.get("flags"), dict):
                flags = pstate["flags"]
            if not state_text and isinstance(pstate.get("text"), str):
                state_text = pstate["text"]
    lowered = state_text.strip().lower()
    error = job.get("error")
    error_text = error if isinstance(error, str) and error else ""
    error_detail = state_text or "error"
    if error_text and error_text not in error_detail:
        error_detail = f"{error_detail}: {error_text}"

    data: dict[str, object] = {"state": state_text}
    temps = _temperatures(printer)
    if temps:
        data["temperatures"] = temps

    if lowered.startswith(_PAUSED_PREFIXES):
        activity = Activity.PAUSED
    elif lowered.startswith(_BUSY_PREFIXES):
        activity = Activity.BUSY
    elif lowered.startswith("operational"):
        activity = Activity.IDLE
    elif "error" in lowered:  # "Error: ...", "Offline after error"
        return MachineReport(Activity.ERROR, detail=error_detail, data={**data, "job": False})
    elif lowered.startswith(("offline", "closed")):
        return MachineReport(Activity.UNKNOWN, detail=NOT_CONNECTED, data=data)
    elif lowered.startswith(_CONNECTING_PREFIXES):
        return MachineReport(Activity.UNKNOWN, detail=f"{NOT_CONNECTED} ({state_text})", data=data)
    elif flags.get("error") or flags.get("closedOrError") and not flags.get("operational"):
        return MachineReport(Activity.ERROR, detail=error_detail, data={**data, "job": False})
    elif flags.get("paused") or flags.get("pausing"):
        activity = Activity.PAUSED
    elif flags.get("printing") or flags.get("cancelling") or flags.get("finishing"):
        activity = Activity.BUSY
    elif flags.get("operational"):
        activity = Activity.IDLE
    else:
        return MachineReport(
            Activity.UNKNOWN, detail=f"unrecognised OctoPrint state {state_text!r}", data=data
        )

    job_info = _mapping(job.get("job"))
    file_info = _mapping(job_info.get("file"))
    name = file_info.get("display") or file_info.get("name") or file_info.get("path")
    progress_info = _mapping(job.get("progress"))
    completion = _number(progress_info.get("completion"))
    if completion is not None:
        completion = min(100.0, max(0.0, completion))

    # OctoPrint's analysis gives the file's filament (all tools) before it prints; what a
    # job has used is that share of it its completion says.
    total_mm = _filament_length(job_info)
    used_mm = None
    if total_mm is not None and completion is not None:
        used_mm = round(total_mm * completion / 100.0, 1)

    if activity is Activity.IDLE:
        detail = state_text
        if job_was_running:
            ended = "finished" if completion == 100.0 else "cancelled"
            detail = f"{state_text} (job {ended})"
        return MachineReport(
            Activity.IDLE,
            detail=detail,
            data={**data, "job": False},
            filament_mm=used_mm if job_was_running else None,
        )

    left = _number(progress_info.get("printTimeLeft"))
    if left is not None:
        left = max(0.0, left)
    print_time = _number(progress_info.get("printTime"))
    if print_time is not None:
        data["print_time_s"] = print_time
    if isinstance(file_info.get("origin"), str):
        data["origin"] = file_info["origin"]
    data["job"] = not lowered.startswith("cancelling") and not flags.get("cancelling", False)
    return MachineReport(
        activity,
        job_name=name if isinstance(name, str) else None,
        progress=completion,
        time_left_s=left,
        filament_mm=used_mm,
        detail=state_text,
        data=data,
    )


def _filament_length(job_info: dict[str, Any]) -> float | None:
    """The file's filament in mm, summed over its tools (``job.filament.tool0.length``),
    or None while OctoPrint has not analysed it (or says nonsense)."""
    tools = _mapping(job_info.get("filament"))
    lengths = [_number(_mapping(t).get("length")) for t in tools.values()]
    known = [v for v in lengths if v is not None and v >= 0]
    return sum(known) if known else None


class OctoPrintController(MachineController):
    """Reports what an OctoPrint-driven printer does, polling from a daemon thread.

    Every poll emits one report, whatever happened: a network failure, a wrong key or
    garbage from OctoPrint becomes an UNKNOWN report with a readable detail, never an
    exception in the poll thread, because a node must keep metering even while
    OctoPrint restarts.
    """

    def __init__(
        self, url: str, api_key: str, *, poll_interval: float = 2.0, timeout: float = 5.0
    ) -> None:
        super().__init__()
        self.client = OctoPrintClient(url, api_key, timeout=timeout)
        self.poll_interval = poll_interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._state_lock = threading.Lock()
        self._closed = False
        self._logged: tuple[Activity, str] | None = None
        self._job_running = False  # only the poll thread touches it

    def start(self) -> None:
        with self._state_lock:
            if self._closed:
                raise RuntimeError("OctoPrintController is closed")
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._run, name=f"octoprint-poll {self.client.base_url}", daemon=True
            )
            self._thread.start()

    def poll_once(self) -> MachineReport:
        """One observation, without emitting it; never raises. Called by the poll thread."""
        try:
            job = self.client.job()
        except OctoPrintError as e:
            return _failure_report(e)
        try:
            printer: dict[str, Any] | None = self.client.printer()
        except OctoPrintError as e:
            if e.status != 409:  # 409: printer not operational; /api/job says why
                return _failure_report(e)
            printer = None
        try:
            report = report_from(job, printer, job_was_running=self._job_running)
        except Exception as e:  # a shape we never imagined must not stop metering
            log.exception("cannot interpret OctoPrint's answer")
            return MachineReport(Activity.UNKNOWN, detail=f"unexpected answer from OctoPrint: {e}")
        if report.activity is not Activity.UNKNOWN:  # link trouble says nothing about the job
            self._job_running = report.data.get("job") is True
        return report

    def safe_stop(self) -> None:
        """Cancel the job through OctoPrint, which runs the printer's own cancel script.

        Session rules never call this while a printer is busy unless the hub asks: a
        cancelled print cannot be resumed. Nothing to cancel (409) is not an error.
        Raises OctoPrintError when OctoPrint cannot be reached or refuses.
        """
        try:
            self.client.cancel()
        except OctoPrintError as e:
            if e.status != 409:
                raise
            log.info("safe_stop: no job to cancel (%s)", e.message)
        finally:
            self._wake.set()  # report the outcome without waiting a full interval

    def close(self) -> None:
        with self._state_lock:
            self._closed = True
            thread, self._thread = self._thread, None
        self._stop.set()
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            # One poll makes at most two requests, each bounded by the timeout.
            thread.join(timeout=2 * self.client.timeout + 1.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            report = self.poll_once()
            if self._stop.is_set():
                break
            self._log_change(report)
            try:
                self._emit(report)
            except Exception:
                log.exception("a report callback raised; the driver keeps polling")
            self._wake.wait(self.poll_interval)
            self._wake.clear()

    def _log_change(self, report: MachineReport) -> None:
        key = (report.activity, report.detail if report.activity is Activity.UNKNOWN else "")
        if key != self._logged:
            self._logged = key
            level = logging.WARNING if report.activity is Activity.UNKNOWN else logging.INFO
            log.log(
                level,
                "OctoPrint at %s: %s %s",
                self.client.base_url,
                report.activity,
                report.detail,
            )


def _failure_report(e: OctoPrintError) -> MachineReport:
    if e.status in (401, 403):
        detail = f"OctoPrint refused the API key (HTTP {e.status}): {e.message}"
    elif e.status is not None:
        detail = f"OctoPrint answered HTTP {e.status} to {e.path}: {e.message}"
    else:
        detail = f"OctoPrint {e.message} ({e.path})"
    return MachineReport(Activity.UNKNOWN, detail=detail, data={"http_status": e.status})
