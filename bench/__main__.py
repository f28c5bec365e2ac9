"""``python -m bench``: run the benchmarks, print one table, keep it as JSON and Markdown.

One command for everything, so that a figure in ``docs/performance.md`` can always be
reproduced by the command printed above it. A benchmark that crashes does not hide the
others: its error is reported in the table and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from bench import accounting, footprint, ingest, pages, revocation, tap
from bench.common import Figure, machine_info

BENCHMARKS: dict[str, ModuleType] = {
    m.NAME: m for m in (tap, ingest, revocation, accounting, footprint, pages)
}
DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 1 or magnitude == 0:
        return f"{value:.2f}"
    return f"{value:.4f}"


def table(figures: list[Figure]) -> str:
    lines = [
        "| benchmark | figure | median | spread (min–max) | runs | unit | bar | met |",
        "|---|---|---:|---:|---:|---|---|---|",
    ]
    for f in figures:
        if not f.available:
            lines.append(
                f"| {f.bench} | {f.name} | {f.note} | | 0 | {f.unit} | {f.bar or ''} | — |"
            )
            continue
        spread = f"{fmt(min(f.values))}–{fmt(max(f.values))}" if len(f.values) > 1 else ""
        met = {True: "yes", False: "**NO**", None: ""}[f.met]
        lines.append(
            f"| {f.bench} | {f.name} | {fmt(f.median)} | {spread} | "
            f"{len(f.values)} | {f.unit} | {f.bar or ''} | {met} |"
        )
    return "\n".join(lines)


def notes(figures: list[Figure]) -> str:
    return "\n".join(f"- {f.bench}, {f.name}: {f.note}" for f in figures if f.note and f.available)


def markdown(report: dict, figures: list[Figure]) -> str:
    m = report["machine"]
    return "\n".join(
        [
            f"Command: `{report['command']}` ({'quick' if report['quick'] else 'full'} run, "
            f"{report['duration_s']:.0f} s, {report['started']})",
            "",
            f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram']} RAM, Python {m['python']}, "
            f"{m['os']}, SQLite {m['sqlite']}, {m['mosquitto']}",
            "",
            table(figures),
            "",
            notes(figures),
            "",
        ]
    )


def failed(name: str, exc: BaseException) -> Figure:
    return Figure(
        name,
        "benchmark failed",
        "",
        [],
        note=f"error: {type(exc).__name__}: {exc}".replace("\n", " ")[:300],
        available=False,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "--quick", action="store_true", help="a short smoke run: small sizes, one run per figure"
    )
    p.add_argument(
        "--only",
        action="append",
        choices=sorted(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="where latest.json and latest.md go (default: bench/results)",
    )
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep the working directory (logs, databases) and print its path",
    )
    args = p.parse_args(argv)
    selected = [n for n in BENCHMARKS if not args.only or n in args.only]
    command = "python -m bench " + shlex.join(argv if argv is not None else sys.argv[1:])
    work = Path(tempfile.mkdtemp(prefix="fabgate-bench-"))
    started = datetime.now(UTC)
    t0 = time.monotonic()
    figures: list[Figure] = []
    errors: dict[str, str] = {}
    try:
        for name in selected:
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            t = time.monotonic()
            runner: Callable[[Path, bool], list[Figure]] = BENCHMARKS[name].run
            try:
                figures += runner(work / name, args.quick)
            except Exception as exc:  # noqa: BLE001 - report it, run the others
                errors[name] = traceback.format_exc()
                traceback.print_exc()
                figures.append(failed(name, exc))
            print(
                f"[bench] {name} done in {time.monotonic() - t:.0f} s", file=sys.stderr, flush=True
            )
    finally:
        if args.keep:
            print(f"[bench] working directory kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    report = {
        "command": command.strip(),
        "started": started.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - t0, 1),
        "quick": args.quick,
        "machine": machine_info(),
        "figures": [f.to_dict() for f in figures],
        "errors": errors,
    }
    text = markdown(report, figures)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (args.out / "latest.md").write_text(text, encoding="utf-8")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
