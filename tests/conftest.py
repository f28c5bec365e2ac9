"""Fixtures shared by the whole test suite; keep this file small.

Only fixtures that several test modules need belong here. A broker fixture fails
instead of skipping when Mosquitto is missing: a skipped integration test reads as
green in CI, and the bootstrap script installs Mosquitto anyway.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory
from hypothesis import settings

from tests.support.harness import FABMANAGER_PASSWORD, Observer, Site
from tests.support.mosquitto import MosquittoProcess, find_mosquitto

README_TEST_COMMAND = "python3 scripts/bootstrap.py test"

# Property tests check behaviour, not speed: a per-example deadline only turns a busy
# machine (CI beside other work, a Pi) into false failures. Speed lives in bench/.
settings.register_profile("fabgate", deadline=None)
settings.load_profile("fabgate")


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoProcess]:
    """A private Mosquitto on a free port, its config, database and log in tmp_path."""
    if find_mosquitto() is None:
        pytest.fail(
            "the mosquitto binary is not installed; run the README test command "
            f"`{README_TEST_COMMAND}`, which installs it",
            pytrace=False,
        )
    broker = MosquittoProcess(workdir=tmp_path / "mosquitto")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def mock_pins() -> Iterator[MockFactory]:
    """gpiozero's mock pins as the default factory, so drivers run without a Pi."""
    previous = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.reset()
        Device.pin_factory = previous


@pytest.fixture
def cheap_passwords() -> Iterator[None]:
    """Cheap Argon2 in the hub (tests/support/hashing.py), where hashing is not the subject."""
    from tests.support.hashing import cheap_hashing  # the web app: Flask

    with cheap_hashing():
        yield


@pytest.fixture
def site(tmp_path: Path, mosquitto: MosquittoProcess) -> Iterator[Site]:
    """A demo-shaped site (configuration, keys, members) whose processes stop at the end."""
    s = Site(tmp_path, mosquitto.url)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def observer(site: Site, mosquitto: MosquittoProcess) -> Iterator[Observer]:
    """Everything published under the site's prefix, for tests to wait on."""
    obs = Observer(mosquitto.url, "fablab/demo/")
    try:
        yield obs
    finally:
        obs.close()


@pytest.fixture
def hub_service(site: Site, mosquitto: MosquittoProcess) -> Iterator[object]:
    """The demo site's hub service, in this process (snapshot loop, web server), with a
    fabmanager log-in for Karim (``karim@example.org``, ``FABMANAGER_PASSWORD``)."""
    from gateway.config import load_hub_config
    from gateway.hub import accounts
    from gateway.hub.db import HubStore
    from gateway.hub.service import HubService
    from gateway.web import hub_web_app
    from tests.support.hashing import cheap_hashing

    cfg = load_hub_config(site.files.hub_config)
    with cheap_hashing():
        svc = HubService(cfg, web_app=hub_web_app)  # imports the demo seed
        with HubStore(cfg.database) as store:
            accounts.create_account(
                store, "m-karim", "karim@example.org", actor="test", password=FABMANAGER_PASSWORD
            )
            accounts.grant_role(store, "m-karim", "fabmanager", None, actor="test")
        svc.start()
        try:
            yield svc
        finally:
            svc.stop()
