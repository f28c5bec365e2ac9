"""The demo's log-ins: each person it prints can log in and reach their pages, the
accountant (Camille) the invoices and closing a month."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.config import load_hub_config
from gateway.config.seed import load_seed
from gateway.core.clock import utcnow
from gateway.core.months import local_month, month_text
from gateway.demo import run
from gateway.demo.site import init_site
from gateway.hub.catalogue import sync_catalogue
from gateway.hub.db import HubStore
from gateway.hub.seed import import_seed
from gateway.web import create_app


def test_the_demo_prints_and_makes_an_accountant_log_in(
    tmp_path: Path, cheap_passwords: None
) -> None:
    files = init_site(tmp_path / "site")
    cfg = load_hub_config(files.hub_config)
    assert cfg.seed is not None
    with HubStore(cfg.database) as store:
        sync_catalogue(store, list(cfg.groups), list(cfg.machines))
        import_seed(store, load_seed(cfg.seed))
    password = run._demo_accounts(cfg, files.data)
    lines = run.login_lines()
    assert "Camille (comptabilité): camille@demo.fablab.invalid" in lines
    assert "Karim (fabmanager)" in lines and "Bruno" in lines and "Alice" in lines

    client = create_app(cfg).test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    answer = client.post(
        "/login",
        data={
            "email": "camille@demo.fablab.invalid",
            "password": password,
            "csrf_token": token[1],
        },
    )
    assert answer.status_code == 302
    assert client.get("/invoices").status_code == 200
    last = month_text(local_month(utcnow(), cfg.timezone, -1)[0])
    close = client.get(f"/periods/{last}/close")
    assert close.status_code == 200 and 'name="confirm"' in close.get_data(as_text=True)
    assert client.get("/certify").status_code == 403  # an accountant certifies nobody
