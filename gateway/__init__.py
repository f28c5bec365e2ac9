"""fablab-gateway: badge-controlled machine power, usage metering and a hub for fablabs."""

__version__ = "0.2.0"
