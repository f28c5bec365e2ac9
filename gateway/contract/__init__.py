"""The MQTT contract between nodes and the hub, in one package.

- :mod:`.core`: ``ContractError``, wire times (``parse_iso`` raising ``ContractError``;
  ``iso`` and ``utcnow`` are in ``gateway.core.clock``), bounded JSON parsing (size,
  UTF-8, depth, finite numbers) and the bounds of node messages;
- :mod:`.fields`: the field specs the typed messages are declared with;
- :mod:`.events`: one frozen type per event type (``Tap``, ``SessionEnded``, ...);
- :mod:`.status`: the node status;
- :mod:`.messages`: topics, the event envelope, acknowledgements, simulated taps and
  jobs, the enrolment window;
- :mod:`.signing`: the hub's Ed25519 keys, signed snapshots and the node's checks;
- :mod:`.mqtt`: the paho-mqtt link both ends use.

Everything but ``signing`` and ``mqtt`` (which pull in cryptography and paho) is
importable from ``gateway.contract`` directly. ``docs/mqtt.md`` documents
the same contract for humans; ``tests/test_contract_docs.py`` keeps the two in step.
"""

from gateway.contract.core import (
    CONTRACT_VERSION,
    MAX_NODE_MESSAGE_BYTES,
    MAX_NODE_MESSAGE_DEPTH,
    SQLITE_INT_MAX,
    ContractError,
    dumps,
    loads_object,
    parse_iso,
)
from gateway.contract.events import (
    END_REASONS,
    EV_BADGE_ENROLLED,
    EV_CERT_GRANTED,
    EV_JOB,
    EV_NODE_BOOT,
    EV_SESSION_ENDED,
    EV_SESSION_STARTED,
    EV_SNAPSHOT_REJECTED,
    EV_STAFF_PRESENCE,
    EV_TAP,
    EVENT_CLASSES,
    EVENT_TYPES,
    JOB_EVENTS,
    MAX_DETAIL,
    MAX_NAME,
    MAX_SESSION_S,
    MAX_TIME_LEFT_S,
    SNAPSHOT_REJECT_REASONS,
    TAP_ACTIONS,
    BadgeEnrolled,
    CertificationGranted,
    EventData,
    Job,
    NodeBoot,
    SessionEnded,
    SessionStarted,
    SnapshotRejectedEvent,
    StaffPresence,
    Tap,
    decode_event,
    tap_reasons,
)
from gateway.contract.messages import (
    Envelope,
    EnvelopeError,
    Topics,
    decode_ack,
    decode_sim_job,
    decode_sim_tap,
    default_prefix,
    encode_ack,
    encode_enrolment,
    encode_sim_job,
    encode_sim_tap,
)
from gateway.contract.status import (
    NodeStatus,
    StatusJob,
    StatusSession,
    decode_status,
    encode_status,
)

__all__ = [
    "CONTRACT_VERSION",
    "END_REASONS",
    "EVENT_CLASSES",
    "EVENT_TYPES",
    "EV_BADGE_ENROLLED",
    "EV_CERT_GRANTED",
    "EV_JOB",
    "EV_NODE_BOOT",
    "EV_SESSION_ENDED",
    "EV_SESSION_STARTED",
    "EV_SNAPSHOT_REJECTED",
    "EV_STAFF_PRESENCE",
    "EV_TAP",
    "JOB_EVENTS",
    "MAX_DETAIL",
    "MAX_NAME",
    "MAX_NODE_MESSAGE_BYTES",
    "MAX_NODE_MESSAGE_DEPTH",
    "MAX_SESSION_S",
    "MAX_TIME_LEFT_S",
    "SNAPSHOT_REJECT_REASONS",
    "SQLITE_INT_MAX",
    "TAP_ACTIONS",
    "BadgeEnrolled",
    "CertificationGranted",
    "ContractError",
    "Envelope",
    "EnvelopeError",
    "EventData",
    "Job",
    "NodeBoot",
    "NodeStatus",
    "SessionEnded",
    "SessionStarted",
    "SnapshotRejectedEvent",
    "StaffPresence",
    "StatusJob",
    "StatusSession",
    "Tap",
    "Topics",
    "decode_ack",
    "decode_event",
    "decode_sim_job",
    "decode_sim_tap",
    "decode_status",
    "default_prefix",
    "dumps",
    "encode_ack",
    "encode_enrolment",
    "encode_sim_job",
    "encode_sim_tap",
    "encode_status",
    "loads_object",
    "parse_iso",
    "tap_reasons",
]
