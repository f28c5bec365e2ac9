#!/usr/bin/env python3
"""One command from a fresh clone to a running demo or a green test suite.

Usage:
    python3 scripts/bootstrap.py demo  [fabgate demo args...]
    python3 scripts/bootstrap.py test  [pytest args...]
    python3 scripts/bootstrap.py bench [bench args...]

Volunteers at a fablab run this on a stock Debian or Raspberry Pi OS machine, often with
nothing installed beyond the system python3, so it uses the standard library only and
says exactly which apt command is missing when it cannot fix things itself. Everything
it installs goes into ``.venv`` inside the repository; the only system packages it may
install (as root) are python3-venv, mosquitto, chromium and chromium-driver, and Pango
with a font for the invoice PDFs (libpango-1.0-0, libpangoft2-1.0-0, fonts-dejavu-core).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".fabgate-bootstrap.json"
MIN_PYTHON = (3, 11)

# The RC522 driver's own dependencies (RPi.GPIO, spidev) only build on a Pi; the tests
# fake them, so the package is installed without them.
MFRC522 = "mfrc522==0.0.7"
# pyproject.toml's extras each command needs: the tests and benchmarks run every role
# (hub, nodes, the demo's embedded broker); the demo runs a hub and nodes.
TEST_EXTRAS = ("dev", "hub", "node", "demo")
DEMO_EXTRAS = ("demo", "node")

USAGE = """usage:
    python3 scripts/bootstrap.py test  [--clock-shift DAYS] [pytest args...]
    python3 scripts/bootstrap.py demo  [fabgate demo args...]
    python3 scripts/bootstrap.py bench [bench args...]
    python3 scripts/bootstrap.py wheel [--out DIR]   (default DIR: dist/)"""

EXIT_NEEDS_USER = 2
PYTEST_NO_TESTS = 5


def say(message: str) -> None:
    print(f"bootstrap: {message}", flush=True)


def give_up(message: str, code: int = EXIT_NEEDS_USER) -> NoReturn:
    print(f"bootstrap: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def is_root() -> bool:
    return os.geteuid() == 0


def run(cmd: list[str], **kwargs: Any) -> int:
    return subprocess.call(cmd, **kwargs)


def apt_install(packages: list[str], why: str) -> None:
    """Install Debian packages when we are root, or tell the user the exact command."""
    command = "apt-get install -y " + " ".join(packages)
    if not is_root():
        give_up(
            f"{why}; please run:\n\n    sudo apt-get update && sudo {command}\n\n"
            "then run this command again."
        )
    if shutil.which("apt-get") is None:
        give_up(
            f"{why}, and this system has no apt-get; install {' '.join(packages)} "
            "with your package manager."
        )
    say(f"{why}: installing {' '.join(packages)} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if (
        run(["apt-get", "update"], env=env) != 0
        or run(["apt-get", "install", "-y", *packages], env=env) != 0
    ):
        give_up(f"apt-get could not install {' '.join(packages)}; see the output above.")


# --- virtual environment ---------------------------------------------------------------


def venv_works() -> bool:
    """A .venv left half-made by a failed ensurepip, or built by a Python that has since
    been upgraded away, has no working pip: recreate it rather than fail later."""
    if not VENV_PYTHON.exists():
        return False
    probe = [str(VENV_PYTHON), "-m", "pip", "--version"]
    return run(probe, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0


def create_venv() -> None:
    say("creating virtual environment in .venv")
    if VENV.exists():
        shutil.rmtree(VENV)
    result = subprocess.run(
        [sys.executable, "-m", "venv", str(VENV)], capture_output=True, text=True
    )
    if result.returncode == 0 and venv_works():
        return
    output = (result.stdout + result.stderr).strip()
    shutil.rmtree(VENV, ignore_errors=True)
    if "ensurepip" not in output and result.returncode != 0:
        give_up(f"python3 -m venv failed:\n{output}", 1)
    # Debian and Raspberry Pi OS split venv/ensurepip into the python3-venv package.
    apt_install(
        ["python3-venv"], "python3 cannot create virtual environments (python3-venv is missing)"
    )
    say("creating virtual environment in .venv")
    if run([sys.executable, "-m", "venv", str(VENV)]) != 0 or not venv_works():
        shutil.rmtree(VENV, ignore_errors=True)
        give_up("python3 -m venv still fails after installing python3-venv.", 1)


def pyproject_hash() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def read_stamp() -> dict[str, Any]:
    try:
        data = json.loads(STAMP.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def pip(*args: str) -> None:
    cmd = [str(VENV_PYTHON), "-m", "pip", "--disable-pip-version-check", *args]
    if run(cmd, cwd=ROOT) != 0:
        give_up(f"pip failed: {' '.join(args)}", 1)


def ensure_installed(*, extras: tuple[str, ...], no_deps: tuple[str, ...] = ()) -> None:
    """Install the project with ``extras`` into .venv unless pyproject.toml is unchanged
    since last time and those extras are in already.

    The install is editable, so code changes need nothing; only a change to the
    dependencies or entry points in pyproject.toml needs pip again. Extras installed by
    an earlier command are kept (``demo`` after ``test`` does not take away pytest).
    ``no_deps`` are packages installed without their dependencies.
    """
    if not venv_works():
        create_venv()
    stamp = read_stamp()
    digest = pyproject_hash()
    if stamp.get("pyproject") != digest:
        stamp = {"pyproject": digest}
    have = stamp.get("installed_extras")
    have_set = {str(extra) for extra in have} if isinstance(have, list) else set()
    if have is None or not set(extras) <= have_set:
        wanted = sorted(have_set | set(extras))
        target = f".[{','.join(wanted)}]" if wanted else "."
        say(
            f"installing fablab-gateway{target[1:]} into .venv "
            "(a few minutes on a Raspberry Pi the first time)"
        )
        pip("install", "--quiet", "-e", target)
        stamp["installed_extras"] = wanted
        stamp.pop("no_deps", None)  # a new install may have replaced them
        STAMP.write_text(json.dumps(stamp), encoding="utf-8")
    else:
        say("fablab-gateway is up to date in .venv")
    done = {str(package) for package in stamp.get("no_deps", [])}
    missing = [package for package in no_deps if package not in done]
    if missing:
        say(f"installing {', '.join(missing)} without dependencies")
        pip("install", "--quiet", "--no-deps", *missing)
        stamp["no_deps"] = sorted(done | set(missing))
        STAMP.write_text(json.dumps(stamp), encoding="utf-8")


# --- mosquitto ---------------------------------------------------------------------------


def find_mosquitto() -> str | None:
    # /usr/sbin is not on a normal user's PATH on Debian.
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None


def ensure_mosquitto() -> None:
    """The integration tests start their own Mosquitto on free ports; they need only the
    binary, so a system service apt may have started is left alone."""
    if find_mosquitto() is not None:
        return
    apt_install(["mosquitto"], "the tests need the mosquitto broker")
    if find_mosquitto() is None:
        give_up("mosquitto was installed but its binary is not on PATH or in /usr/sbin.", 1)


# --- pango (invoice PDFs) ----------------------------------------------------------------

# WeasyPrint (the hub's invoice PDFs) loads Pango and its FreeType backend from the
# system, and needs at least one font to embed (PDF/A embeds every glyph it prints).
PDF_LIBRARIES = {"pango-1.0": "libpango-1.0-0", "pangoft2-1.0": "libpangoft2-1.0-0"}
PDF_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


def missing_pdf_packages() -> list[str]:
    import ctypes.util

    missing = [pkg for lib, pkg in PDF_LIBRARIES.items() if ctypes.util.find_library(lib) is None]
    if not PDF_FONT_DIR.is_dir():
        missing.append("fonts-dejavu-core")
    return missing


def ensure_pdf_libraries() -> None:
    missing = missing_pdf_packages()
    if missing:
        apt_install(missing, "invoice PDFs (WeasyPrint) need Pango and a font")


# --- chromium ----------------------------------------------------------------------------

# The browser tests drive Debian's chromium through its chromedriver, both from apt and so
# always the same version; they are used by path and nothing is downloaded at test time.
BROWSER_BINARIES = {
    "chromium": Path("/usr/bin/chromium"),
    "chromium-driver": Path("/usr/bin/chromedriver"),
}


def missing_browser_packages() -> list[str]:
    return [
        package for package, binary in BROWSER_BINARIES.items() if not os.access(binary, os.X_OK)
    ]


def ensure_browser() -> None:
    """The browser tests start their own headless chromium with a throw-away profile."""
    missing = missing_browser_packages()
    if not missing:
        return
    apt_install(missing, "the browser tests need chromium and its driver")
    still = missing_browser_packages()
    if still:
        give_up(
            f"{' and '.join(still)} were installed but "
            f"{' and '.join(str(BROWSER_BINARIES[p]) for p in still)} are missing.",
            1,
        )


# --- commands ----------------------------------------------------------------------------

CLOCK_SHIFT_ENV = "FABGATE_CLOCK_SHIFT_DAYS"
CLOCK_SHIFT_DIR = ROOT / "tests" / "clockshift"


def clock_shift_env(args: list[str]) -> tuple[list[str], dict[str, str]]:
    """Take ``--clock-shift DAYS`` off the pytest arguments; return the environment to run
    with (the sitecustomize folder first on PYTHONPATH when a shift is asked for)."""
    env = dict(os.environ)
    rest = list(args)
    if rest[:1] == ["--clock-shift"]:
        if len(rest) < 2:
            give_up("--clock-shift needs a number of days, e.g. --clock-shift 400")
        env[CLOCK_SHIFT_ENV] = rest[1]
        rest = rest[2:]
    days = env.get(CLOCK_SHIFT_ENV, "").strip()
    if not days:
        env.pop(CLOCK_SHIFT_ENV, None)
        return rest, env
    try:
        float(days)
    except ValueError:
        give_up(f"{CLOCK_SHIFT_ENV}={days!r}: expected a number of days, e.g. 400")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(CLOCK_SHIFT_DIR), env.get("PYTHONPATH", "")) if p
    )
    say(f"wall clock moved {days} days ahead in every Python process (monotonic unchanged)")
    return rest, env


def cmd_test(args: list[str]) -> int:
    args, env = clock_shift_env(args)
    ensure_installed(extras=TEST_EXTRAS, no_deps=(MFRC522,))
    ensure_mosquitto()
    ensure_browser()
    ensure_pdf_libraries()
    say("running pytest " + " ".join(args))
    try:
        code = run([str(VENV_PYTHON), "-m", "pytest", *args], cwd=ROOT, env=env)
    except KeyboardInterrupt:
        return 130
    if code == PYTEST_NO_TESTS:
        say(
            "pytest collected no tests: that is a failure (check the arguments; "
            "paths are relative to the repository root)"
        )
        return 1
    return code


def cmd_demo(args: list[str]) -> int:
    ensure_installed(extras=DEMO_EXTRAS)
    ensure_pdf_libraries()
    fabgate = VENV / "bin" / "fabgate"
    say("starting fabgate demo " + " ".join(args))
    os.chdir(ROOT)
    os.execv(str(fabgate), [str(fabgate), "demo", *args])
    return 0  # not reached


def cmd_bench(args: list[str]) -> int:
    bench = ROOT / "bench"
    if not ((bench / "__init__.py").exists() or (bench / "__main__.py").exists()):
        say("there is no bench package in this checkout yet; nothing to run")
        return EXIT_NEEDS_USER
    ensure_installed(extras=TEST_EXTRAS)
    os.chdir(ROOT)
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), "-m", "bench", *args])
    return 0  # not reached


def cmd_wheel(args: list[str]) -> int:
    """Build the installable wheel: what deploy/provision-*.sh install on a hub or a Pi
    while the package is not on the index (``--from wheel:dist/...whl``)."""
    out = ROOT / "dist"
    if args[:1] == ["--out"] and len(args) == 2:
        out = Path(args[1]).resolve()
    elif args:
        give_up("usage: python3 scripts/bootstrap.py wheel [--out DIR]")
    if not venv_works():
        create_venv()
    # The build backend from the venv, not a download per build: works offline once the
    # venv exists, and builds the same wheel every time.
    pip("install", "--quiet", "setuptools>=68", "wheel")
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.glob("*.whl"))
    code = run(
        [str(VENV_PYTHON), "-m", "pip", "wheel", "--quiet", "--no-deps",
         "--no-build-isolation", "--wheel-dir", str(out), str(ROOT)],
        cwd=ROOT,
    )
    if code != 0:
        return code
    built = sorted(set(out.glob("fablab_gateway-*.whl")) - before) or sorted(
        out.glob("fablab_gateway-*.whl"), key=lambda p: p.stat().st_mtime
    )[-1:]
    for wheel in built:
        say(f"built {wheel}")
    return 0


COMMANDS = {"test": cmd_test, "demo": cmd_demo, "bench": cmd_bench, "wheel": cmd_wheel}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(USAGE, file=sys.stderr)
        return EXIT_NEEDS_USER
    if sys.version_info < MIN_PYTHON:
        give_up(
            f"fablab-gateway needs Python {'.'.join(map(str, MIN_PYTHON))} or newer; "
            f"this is {sys.version.split()[0]} (Debian 12 and Raspberry Pi OS "
            "bookworm have 3.11)."
        )
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
