#!/usr/bin/env python3
"""Screenshots of the main pages for the README and docs/, from a running demo.

    PYTHONPATH=. .venv/bin/python scripts/screenshots.py [--out docs/images]

It starts ``fabgate demo`` in a temporary directory (embedded broker, the hub, the four
simulated machines, the scripted scenario, a generated year of history), closes that
year's twelve months through the accounting API so the invoice pages have documents,
records a payment on the web, then drives Debian's chromium (headless, 1280 px wide,
through Selenium, as the browser tests do) as Karim, the fabmanager, and Alice, a member,
and saves one PNG per page. Each PNG is reduced to a 256-colour palette, which keeps a
page of text sharp at a fraction of the size. The first page of an invoice's PDF is
rendered with ``pdftoppm`` (Debian's poppler-utils) when it is installed.

Run on demand, not in CI: the pictures show the demo's live state, which changes from
one run to the next. Needs the ``dev`` and ``demo`` extras, ``chromium`` and
``chromium-driver``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WIDTH = 1280
MAX_HEIGHT = 1000  # a long page is cut there: its top is what a reader needs
START_TIMEOUT_S = 300.0  # the year of history is generated at the first start
PAGE_TIMEOUT_S = 20.0
KARIM = "karim@demo.fablab.invalid"
ALICE = "alice@demo.fablab.invalid"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def wait_for(what: str, check: Callable[[], Any], timeout: float) -> Any:
    """Poll ``check`` until it returns something true (a file appearing has no event)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise SystemExit(f"error: timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def start_demo(data: Path, log_file: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    with log_file.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "demo", "--data", str(data), "--port", "0"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def running() -> dict[str, Any] | None:
        if proc.poll() is not None:
            raise SystemExit(f"error: the demo exited ({proc.returncode}); see {log_file}")
        info = data / "demo.json"
        return json.loads(info.read_text()) if info.exists() else None

    log("starting the demo (the first start generates a year of history) ...")
    return proc, wait_for("the demo to start", running, START_TIMEOUT_S)


def close_months(hub: str, token: str, year: int, last: int) -> None:
    """Close the history's months up to ``last`` in calendar order, as an accounting
    script would (December is closed on the web, for its confirmation page)."""
    for month in range(1, last + 1):
        req = urllib.request.Request(
            f"{hub}api/v1/periods/{year}-{month:02d}/close",
            data=json.dumps({"by": "screenshots"}).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            resp.read()


def browser(profile: Path) -> WebDriver:
    options = Options()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--window-size={WIDTH},900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": "fr-FR,fr"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver


def save_png(png: bytes, path: Path) -> None:
    """Cut to MAX_HEIGHT, reduce to a palette, optimise."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    if image.width > WIDTH:
        image = image.resize((WIDTH, round(image.height * WIDTH / image.width)), Image.LANCZOS)
    image = image.crop((0, 0, image.width, min(image.height, MAX_HEIGHT)))
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, optimize=True
    )
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    log(f"  {shown} ({path.stat().st_size // 1024} KiB)")


class Shooter:
    def __init__(self, driver: WebDriver, hub: str, out: Path) -> None:
        self.driver = driver
        self.hub = hub
        self.out = out
        self.wait = WebDriverWait(driver, PAGE_TIMEOUT_S, poll_frequency=0.2)

    def open(self, path: str, ready: str) -> None:
        self.driver.get(self.hub + path.lstrip("/"))
        self.wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ready)))

    def shot(self, name: str) -> None:
        """The whole page (up to MAX_HEIGHT), not just the window."""
        for _ in range(3):  # a resized window reflows the page: measure again
            height = self.driver.execute_script(
                "window.scrollTo(0, 0); return document.documentElement.scrollHeight;"
            )
            inner = self.driver.execute_script("return window.innerHeight;")
            if int(inner) >= min(int(height), MAX_HEIGHT):
                break
            outer = self.driver.get_window_size()["height"]
            chrome = int(outer) - int(inner)  # the window's own bars, if any
            self.driver.set_window_size(WIDTH, min(int(height), MAX_HEIGHT) + chrome)
        save_png(self.driver.get_screenshot_as_png(), self.out / f"{name}.png")
        self.driver.set_window_size(WIDTH, 900)

    def log_in(self, email: str, password: str, then: str, ready: str) -> None:
        self.driver.delete_all_cookies()
        self.open(f"login?next={then}", "input[name=email]")
        self.driver.find_element(By.NAME, "email").send_keys(email)
        field = self.driver.find_element(By.NAME, "password")
        field.send_keys(password)
        field.submit()
        self.wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ready)))


def shoot(driver: WebDriver, hub: str, password: str, year: int, out: Path, pdf_dir: Path) -> None:
    s = Shooter(driver, hub, out)
    s.log_in(KARIM, password, "/", "li.machine")
    # The scenario keeps members at the machines: wait until the board shows one in use.
    s.wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "li.machine .who:not(:empty)"))
    s.shot("board")

    s.open("members/m-alice", "#certifications")
    s.shot("member")

    s.open("certify?member_id=m-bruno", "#certify-submit")
    Select(driver.find_element(By.ID, "group_id")).select_by_value("laser")
    driver.find_element(By.CSS_SELECTOR, "label[for=level-2]").click()
    driver.find_element(By.ID, "note").send_keys("Formation découpe du samedi")
    s.shot("certify")

    s.open("admin/machines", "main table")
    s.shot("admin-machines")

    s.open(
        f"admin/tariffs/preview?machine=laser-1&category=professionnel&minutes=45"
        f"&busy_minutes=30&at={datetime.now(UTC):%Y-%m-%d}T14:30",
        "#preview-result",
    )
    s.shot("tariff-preview")
    s.open("admin/tariffs", "#tariffs")
    s.shot("tariffs")

    # December closed from its page, after the confirmation; then a card payment.
    s.open(f"periods/{year}-12/close", "#close-form")
    driver.find_element(By.CSS_SELECTOR, "#close-form input[name=confirm]").send_keys(f"{year}-12")
    s.shot("close-month")
    driver.find_element(By.CSS_SELECTOR, "#close-form button[type=submit]").click()
    # Some 340 payers: numbering, hashing and freezing the parties takes a while.
    WebDriverWait(driver, 180).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "table.invoices, .message-error"))
    )
    for error in driver.find_elements(By.CSS_SELECTOR, ".message-error"):
        raise SystemExit(f"error: closing {year}-12 was refused: {error.text}")
    s.open(f"invoices?from={year}-12&to={year}-12", "table.invoices")
    first = driver.find_element(By.CSS_SELECTOR, "table.invoices tr[data-status=unpaid] td a")
    number = first.text
    s.open(f"invoices/{number}", "#payment-form")
    form = driver.find_element(By.ID, "payment-form")
    Select(form.find_element(By.NAME, "means")).select_by_value("card")
    form.find_element(By.NAME, "reference").send_keys("TPE 0042")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    s.wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#status .status-paid")))
    s.shot("invoice")
    s.open(f"invoices?from={year}-12&to={year}-12", "table.invoices")
    s.shot("invoices")

    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm:
        pdf = pdf_dir / f"{number}.pdf"
        pdf.write_bytes(fetch(driver, f"/api/v1/invoices/{number}.pdf"))
        subprocess.run(
            [
                pdftoppm,
                "-png",
                "-r",
                "110",
                "-f",
                "1",
                "-l",
                "1",
                "-singlefile",
                str(pdf),
                str(pdf_dir / "page"),
            ],
            check=True,
        )
        save_png((pdf_dir / "page.png").read_bytes(), out / "invoice-pdf.png")
    else:
        log("  (no pdftoppm: apt-get install poppler-utils for the invoice PDF's picture)")

    s.log_in(ALICE, password, "/me", "#minutes-month")
    s.shot("me")


def fetch(driver: WebDriver, path: str) -> bytes:
    """A download with the browser's own session cookie."""
    import base64

    body: str = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {credentials: 'same-origin'}).then((r) => r.arrayBuffer())"
        "  .then((b) => { const u = new Uint8Array(b); let s = '';"
        "    for (const x of u) { s += String.fromCharCode(x); } done(btoa(s)); });",
        path,
    )
    return base64.b64decode(body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args(argv)
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            raise SystemExit(f"error: {path} is missing (apt-get install chromium chromium-driver)")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fabgate-shots-") as tmp:
        work = Path(tmp)
        proc, info = start_demo(work / "demo", work / "demo.log")
        driver = None
        try:
            year = datetime.now(UTC).year - 1  # the demo's generated year
            log(f"closing the months of {year} ...")
            close_months(info["hub"], info["token"], year, 11)
            password = (work / "demo" / "demo-password").read_text().strip()
            driver = browser(work / "profile")
            driver.set_script_timeout(60)
            log(f"screenshots into {args.out}:")
            shoot(driver, info["hub"], password, year, args.out, work)
        finally:
            if driver is not None:
                driver.quit()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
