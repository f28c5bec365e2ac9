"""The commissioning report: JUnit XML and a short summary a technician attaches to a sheet.

``conftest.py`` feeds :data:`REPORT` from pytest's hooks (each check's outcome and
duration, its docstring's first line as what it proves) and from the ``measure`` fixture
(figures such as the tap-to-relay time); the bench adds the node, the rig and the
versions. At the end of the session the report is written to ``$FABGATE_COMMISSION_OUT``
if set, else to ``commissioning/<node>-<UTC time>/`` (real rig) or
``test-artifacts/commissioning/<node>-<UTC time>/`` (simulated rig, so CI's report lands
in an ignored folder), relative to the working directory.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

OUT_ENV = "FABGATE_COMMISSION_OUT"


@dataclass
class Check:
    name: str
    nodeid: str
    proves: str
    outcome: str = "passed"  # passed, failed, error, skipped
    seconds: float = 0.0
    message: str = ""
    measures: dict[str, float] = field(default_factory=dict)


@dataclass
class Report:
    node: str = "?"
    rig: str = "?"
    rig_kind: str = "?"
    rig_file: str = ""
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    versions: dict[str, str] = field(default_factory=dict)
    checks: dict[str, Check] = field(default_factory=dict)
    logs: list[Path] = field(default_factory=list)

    def check(self, nodeid: str, name: str, proves: str) -> Check:
        if nodeid not in self.checks:
            self.checks[nodeid] = Check(name=name, nodeid=nodeid, proves=proves)
        return self.checks[nodeid]

    @property
    def passed(self) -> bool:
        return all(c.outcome in ("passed", "skipped") for c in self.checks.values())

    def out_dir(self) -> Path:
        explicit = os.environ.get(OUT_ENV)
        if explicit:
            return Path(explicit)
        base = Path("commissioning" if self.rig_kind == "real" else "test-artifacts/commissioning")
        return base / f"{self.node}-{self.started.strftime('%Y%m%dT%H%M%SZ')}"

    def write(self) -> Path:
        out = self.out_dir()
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.xml").write_bytes(self.junit())
        (out / "summary.md").write_text(self.summary(), encoding="utf-8")
        data = {
            "node": self.node,
            "rig": self.rig,
            "rig_kind": self.rig_kind,
            "rig_file": self.rig_file,
            "date": self.started.isoformat(timespec="seconds"),
            "passed": self.passed,
            "versions": self.versions,
            "checks": [asdict(c) for c in self.checks.values()],
        }
        (out / "summary.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
        if self.logs:
            (out / "logs").mkdir(exist_ok=True)
            for log in self.logs:
                if log.exists():
                    shutil.copy(log, out / "logs" / log.name)
        return out

    def junit(self) -> bytes:
        checks = list(self.checks.values())
        suite = ET.Element(
            "testsuite",
            name=f"fabgate-commissioning {self.node}",
            tests=str(len(checks)),
            failures=str(sum(c.outcome == "failed" for c in checks)),
            errors=str(sum(c.outcome == "error" for c in checks)),
            skipped=str(sum(c.outcome == "skipped" for c in checks)),
            time=f"{sum(c.seconds for c in checks):.3f}",
            timestamp=self.started.isoformat(timespec="seconds"),
            hostname=socket.gethostname(),
        )
        props = ET.SubElement(suite, "properties")
        for name, value in {
            "node": self.node,
            "rig": self.rig,
            "rig_kind": self.rig_kind,
            **{f"version.{k}": v for k, v in self.versions.items()},
        }.items():
            ET.SubElement(props, "property", name=name, value=str(value))
        for c in checks:
            module, _, name = c.nodeid.rpartition("::")
            case = ET.SubElement(
                suite,
                "testcase",
                classname=module.removesuffix(".py").replace("/", "."),
                name=name,
                time=f"{c.seconds:.3f}",
            )
            if c.measures:
                cprops = ET.SubElement(case, "properties")
                for key, value in c.measures.items():
                    ET.SubElement(cprops, "property", name=key, value=f"{value:g}")
            if c.outcome in ("failed", "error"):
                tag = "failure" if c.outcome == "failed" else "error"
                ET.SubElement(
                    case, tag, message=c.message.splitlines()[0][:200] if c.message else ""
                )
                case[-1].text = c.message
            elif c.outcome == "skipped":
                ET.SubElement(case, "skipped", message=c.message[:200])
        ET.indent(suite)
        return ET.tostring(suite, encoding="utf-8", xml_declaration=True)

    def summary(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [
            f"# Commissioning report: node {self.node}: {verdict}",
            "",
            f"- date: {self.started.isoformat(timespec='seconds')}",
            f"- rig: {self.rig} ({self.rig_kind})"
            + (f", {self.rig_file}" if self.rig_file else ""),
            f"- host: {socket.gethostname()} ({platform.machine()})",
        ]
        lines += [f"- {k}: {v}" for k, v in self.versions.items()]
        lines += [
            "",
            "| check | result | time | figures | what it proves |",
            "|---|---|---|---|---|",
        ]
        for c in self.checks.values():
            figures = ", ".join(f"{k} {v:g}" for k, v in c.measures.items())
            lines.append(
                f"| {c.name} | {c.outcome.upper()} | {c.seconds:.2f} s | {figures} | {c.proves} |"
            )
        failed = [c for c in self.checks.values() if c.outcome in ("failed", "error")]
        for c in failed:
            lines += ["", f"## {c.name}: {c.outcome}", "", "```", c.message.strip()[-3000:], "```"]
        return "\n".join(lines) + "\n"


REPORT = Report()
