"""The hub's web application: a live machine board and the accounting API.

``create_app`` is a factory so that tests and the hub service each build their own app
from a ``HubConfig``. SQLite connections are bound to their thread and the server is
threaded, so every request opens its own ``HubStore`` (cheap: one file open) and closes
it at teardown. ``store_factory`` lets a caller substitute how stores are opened;
``health`` is the hub service's own health report, which ``/healthz`` includes;
``monitor`` its ingest counters, which ``/metrics`` adds to what the database says.
``clock`` is the wall clock the pages read ("this year" on dates), injected like
everywhere else so a test can set the date.
"""

from __future__ import annotations

from flask import Flask, g

from gateway.config import HubConfig
from gateway.core.clock import WallClock, utcnow
from gateway.hub.db import HubStore
from gateway.hub.monitor import HubMonitor
from gateway.web.context import HealthReport, StoreFactory


def create_app(
    config: HubConfig,
    store_factory: StoreFactory | None = None,
    *,
    health: HealthReport | None = None,
    monitor: HubMonitor | None = None,
    clock: WallClock | None = None,
) -> Flask:
    app = Flask(__name__)
    app.config["HUB"] = config
    app.config["JSON_SORT_KEYS"] = False
    app.extensions["fabgate.health"] = health
    app.extensions["fabgate.monitor"] = monitor
    app.extensions["fabgate.clock"] = clock or utcnow
    app.extensions["fabgate.store_factory"] = store_factory or (lambda: HubStore(config.database))

    @app.teardown_appcontext
    def _close_store(_exc: BaseException | None) -> None:
        store = g.pop("store", None)
        if store is not None:
            store.close()

    from gateway.web import errors, language

    language.install(app)
    errors.install(app)

    from gateway.web.admin import admin
    from gateway.web.api import api
    from gateway.web.auth import auth
    from gateway.web.billing_api import billing
    from gateway.web.invoices import invoice_pages
    from gateway.web.members_api import members_api
    from gateway.web.metrics import metrics
    from gateway.web.pages import pages
    from gateway.web.people import people
    from gateway.web.privacy import privacy
    from gateway.web.report import report_pages
    from gateway.web.tokens import tokens

    app.register_blueprint(auth)  # first: it installs the access check every route passes
    app.register_blueprint(api)
    app.register_blueprint(pages)
    app.register_blueprint(report_pages)
    app.register_blueprint(billing)
    app.register_blueprint(invoice_pages)
    app.register_blueprint(tokens)
    app.register_blueprint(people)
    app.register_blueprint(privacy)
    app.register_blueprint(admin)
    app.register_blueprint(members_api)
    app.register_blueprint(metrics)
    return app


def hub_web_app(
    config: HubConfig, health: HealthReport, monitor: HubMonitor | None = None
) -> Flask:
    """The app the hub process serves: ``HubService(cfg, web_app=hub_web_app)``."""
    return create_app(config, health=health, monitor=monitor)
