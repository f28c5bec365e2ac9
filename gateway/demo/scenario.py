"""The demo's scripted members: badge taps and jobs that keep the pages alive.

They travel over the same MQTT path ``fabgate sim tap`` uses (the nodes' simulated
readers and machines), so the demo exercises what a real card and a real job do.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

from gateway.contract import Topics, encode_sim_job, encode_sim_tap
from gateway.contract.mqtt import MqttLink
from gateway.demo.site import BADGE


class Tap(NamedTuple):
    machine: str
    who: str  # a key of BADGE


class Job(NamedTuple):
    machine: str
    name: str
    steps: int  # its length, in scenario steps


# One pass shows every kind of decision and a job on every machine, then everyone badges
# out, the printer's member in the middle of her print (power is kept until it ends).
SCENARIO: list[Tap | Job] = [
    Tap("laser-1", "fanny"),
    Tap("laser-1", "emile"),
    Tap("laser-1", "alice"),
    Job("laser-1", "boite.lbrn2", 3),
    Tap("cnc-1", "stranger"),
    Tap("cnc-1", "gilles"),
    Tap("cnc-1", "bruno"),
    Job("cnc-1", "plateau.nc", 4),
    Tap("printer-1", "chloe"),
    Tap("embroidery-1", "karim"),
    Tap("printer-1", "chloe"),
    Job("printer-1", "robot.gcode", 7),
    Tap("embroidery-1", "diane"),
    Tap("embroidery-1", "karim"),
    Tap("embroidery-1", "diane"),
    Job("embroidery-1", "ecusson.dst", 3),
    Tap("laser-1", "alice"),
    Tap("cnc-1", "bruno"),
    Tap("printer-1", "chloe"),
    Tap("embroidery-1", "diane"),
]


def run_scenario(
    link: MqttLink, topics: Topics, stop: threading.Event, step_s: float, once: bool = False
) -> int:
    """Tap badges from the script until ``stop``; returns the number of taps sent."""
    sent = 0
    while not stop.is_set():
        for step in SCENARIO:
            if stop.wait(step_s):
                return sent
            if isinstance(step, Tap):
                link.publish(topics.sim_tap(step.machine), encode_sim_tap(BADGE[step.who]))
            else:
                link.publish(
                    topics.sim_job(step.machine), encode_sim_job(step.name, step.steps * step_s)
                )
            sent += 1
        if once:
            return sent
    return sent
