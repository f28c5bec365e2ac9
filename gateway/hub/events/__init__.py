"""What nodes send the hub: every message decoded, checked against its sender, stored.

``ingest`` handles a batch (each message in its own savepoint) and hands each checked
event to the repository that owns what it changes; ``trust`` decides who may say what;
``refusals`` records everything refused; ``journal`` is the hub's copy of every event
received (the ``events`` table), which makes ingest idempotent.
"""
