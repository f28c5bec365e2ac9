"""The header on a phone, in Debian's real chromium: at 360 px wide no page scrolls
sideways and every link of the header can be seen and tapped (it wraps, no JavaScript).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import make_server

from gateway.config import GroupConfig, MachineConfig, Seed, SeedMember
from gateway.hub import accounts
from gateway.hub.catalogue import sync_catalogue
from gateway.hub.db import HubStore
from gateway.hub.seed import import_seed
from gateway.web import create_app
from tests.support.builders import hub_config
from tests.test_browser import browser  # noqa: F401 - the chromium fixture

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"
PHONE = (360, 740)

# Where the page's width and each header link stand, read in the page itself.
READ_LAYOUT_JS = """
const width = document.documentElement.clientWidth;
const links = Array.from(document.querySelectorAll("header a, header button")).map((a) => {
  a.scrollIntoView({block: "center", inline: "nearest"});
  const r = a.getBoundingClientRect();
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return {text: a.innerText.trim(), left: r.left, right: r.right, width: r.width,
          height: r.height, tappable: hit === a || a.contains(hit)};
});
window.scrollTo(0, 0);
return {width: width, scrollWidth: document.documentElement.scrollWidth,
        bodyScrollWidth: document.body.scrollWidth, links: links};
"""


@pytest.fixture
def site(tmp_path: Path, cheap_passwords: None) -> Iterator[str]:
    db = tmp_path / "hub.db"
    machines = [
        MachineConfig(f"m{i}", f"Découpeuse laser numéro {i}", "laser", "laser") for i in range(3)
    ]
    with HubStore(db) as store:
        sync_catalogue(store, [GroupConfig("laser", "Découpe laser")], machines)
        import_seed(
            store,
            Seed(
                file=tmp_path / "seed.yaml",
                members=(SeedMember("m-admin", "Dominique Administratrice", "adherent"),),
            ),
        )
        accounts.create_account(store, "m-admin", "admin@example.org", actor="t", password=PASSWORD)
        accounts.grant_role(store, "m-admin", "admin", None, actor="t")
    app = create_app(hub_config(tmp_path, db, site="Fablab des Deux Rives"))
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join(timeout=5)


def test_the_header_fits_a_phone_with_every_link_reachable(
    site: str,
    browser: WebDriver,  # noqa: F811
) -> None:
    browser.set_window_size(*PHONE)
    browser.get(f"{site}/login?lang=fr")
    browser.find_element("css selector", "input[name=email]").send_keys("admin@example.org")
    browser.find_element("css selector", "input[name=password]").send_keys(PASSWORD)
    browser.find_element("css selector", "form.login button[type=submit]").click()
    WebDriverWait(browser, 30).until(lambda d: "/login" not in d.current_url)
    width = browser.execute_script("return document.documentElement.clientWidth")
    assert width <= PHONE[0]  # the window really is a phone's
    for path in ("/", "/admin", "/members", "/invoices", "/report?lang=en"):
        browser.get(site + path)
        layout = browser.execute_script(READ_LAYOUT_JS)
        assert layout["scrollWidth"] <= layout["width"], (path, layout)
        assert layout["bodyScrollWidth"] <= layout["width"], (path, layout)
        texts = [a["text"] for a in layout["links"]]
        assert len(texts) >= 12, (path, texts)  # admin: every site link, account, FR/EN
        for a in layout["links"]:
            assert a["width"] > 0 and a["height"] > 0, (path, a)
            assert a["left"] >= 0 and a["right"] <= layout["width"] + 0.5, (path, a)
            assert a["tappable"], (path, a)
