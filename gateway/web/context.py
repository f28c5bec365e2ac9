"""What a request's code needs from the app: its store, how stores open, the hub config.

Kept apart from the app factory (``gateway/web/__init__.py``) so that views import this
module, not the package that imports them: no import cycle between the factory and its
blueprints.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, g

from gateway.config import HubConfig
from gateway.core.clock import WallClock, utcnow
from gateway.hub.db import HubStore

StoreFactory = Callable[[], HubStore]
HealthReport = Callable[[], dict[str, Any]]


def get_store() -> HubStore:
    """The request's store, opened on first use."""
    if "store" not in g:
        g.store = store_opener()()
    return g.store


def store_opener() -> StoreFactory:
    """How this app opens stores, for streamed responses: their body runs after the
    request's teardown (and outside the app context), so they open and close their own."""
    opener: StoreFactory = current_app.extensions["fabgate.store_factory"]
    return opener


def hub_config() -> HubConfig:
    cfg: Any = current_app.config["HUB"]
    return cfg


def clock() -> WallClock:
    """The app's wall clock (``create_app(clock=...)``; ``utcnow`` unless a test gives
    one): what "today" and "this year" mean on the pages."""
    wall: WallClock = current_app.extensions.get("fabgate.clock") or utcnow
    return wall
