"""Configuration files: hub, node and seed YAML, loaded into typed, validated objects.

- :mod:`.loader`: the YAML document, typed key access, ``ConfigError``, durations;
- :mod:`.models`: one dataclass per section, each default written once;
- :mod:`.pins`: the Raspberry Pi pin rulebook (boot pulls, SPI pins) shared with the
  relay driver;
- :mod:`.hub`, :mod:`.node`, :mod:`.seed`: one parser per kind of file, and
  :mod:`.kinds` for a file of any kind.

Every error names the file, the line, the key path and what was expected.
"""

from gateway.config.hub import load_hub_config
from gateway.config.kinds import load_any
from gateway.config.loader import ConfigError, parse_duration
from gateway.config.models import (
    CATEGORY_CODE,
    CONTROLLER_DRIVERS,
    CURRENT_SOURCES,
    LANGUAGES,
    MACHINE_KINDS,
    MEMBER_STATUSES,
    READER_DRIVERS,
    RELAY_DRIVERS,
    VAT_EXEMPTION_293B,
    AccountingConfig,
    ApiToken,
    ControllerConfig,
    GroupConfig,
    HubConfig,
    InvoicingConfig,
    Keep,
    MachineConfig,
    MqttConfig,
    NodeConfig,
    PermissiveConfig,
    ReaderConfig,
    RelayConfig,
    RetentionConfig,
    Seed,
    SeedCertification,
    SeedMember,
    SeedProject,
    SellerConfig,
    SenderConfig,
    SessionConfig,
)
from gateway.config.node import load_node_config
from gateway.config.seed import load_seed

__all__ = [
    "CATEGORY_CODE",
    "CONTROLLER_DRIVERS",
    "CURRENT_SOURCES",
    "LANGUAGES",
    "MACHINE_KINDS",
    "MEMBER_STATUSES",
    "READER_DRIVERS",
    "RELAY_DRIVERS",
    "VAT_EXEMPTION_293B",
    "AccountingConfig",
    "ApiToken",
    "ConfigError",
    "ControllerConfig",
    "GroupConfig",
    "HubConfig",
    "InvoicingConfig",
    "Keep",
    "MachineConfig",
    "MqttConfig",
    "NodeConfig",
    "PermissiveConfig",
    "ReaderConfig",
    "RetentionConfig",
    "RelayConfig",
    "Seed",
    "SeedCertification",
    "SeedMember",
    "SeedProject",
    "SellerConfig",
    "SenderConfig",
    "SessionConfig",
    "load_any",
    "load_hub_config",
    "load_node_config",
    "load_seed",
    "parse_duration",
]
