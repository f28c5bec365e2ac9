"""Any configuration file, told apart by its top-level keys (``fabgate check-config``)."""

from __future__ import annotations

from pathlib import Path

from gateway.config.hub import hub_from
from gateway.config.loader import ConfigError, Doc
from gateway.config.models import HubConfig, NodeConfig, Seed
from gateway.config.node import node_from
from gateway.config.seed import SEED_TOP, seed_from


def load_any(path: str | Path) -> HubConfig | NodeConfig | Seed:
    """Load a hub, node or seed file, told apart by its top-level keys: ``hub:``,
    ``node:``, or (a seed file) ``members:``, ``projects:`` or ``certifications:``.

    ``fabgate check-config`` takes any file, so the file itself has to say what it is.
    """
    doc = Doc(path)
    data = doc.data
    if not isinstance(data, dict):
        doc.root(("hub", "node"))  # raises: not a mapping
    if "hub" in data and "node" in data:
        doc.fail("", "either a top-level `hub:` or a `node:` mapping, not both")
    if "hub" in data:
        return hub_from(doc)
    if "node" in data:
        return node_from(doc)
    if any(key in data for key in SEED_TOP):
        return seed_from(doc)
    raise ConfigError(
        doc.file,
        "",
        "a top-level `hub:` mapping (hub configuration), "
        "`node:` mapping (node configuration) or `members:` list (seed file); "
        "this file has none of them",
    )
