"""The demo's scripted members: badge taps and jobs that keep the pages alive.

They travel over the same MQTT path ``fabgate sim tap`` uses (the nodes' simulated
readers and machines), so the demo exercises what a real card and a real job do.
"""

from __future__ import annotations

import threading

from gateway.contract import Topics, encode_sim_job, encode_sim_tap
from gateway.contract.mqtt import MqttLink
from gateway.demo.site import BADGE

# One pass shows every kind of decision and a job on every machine, then everyone badges
# out, the printer's member in the middle of her print (power is kept until it ends).
# ("tap", machine, who) or ("job", machine, name, length in scenario steps).
SCENARIO: list[tuple] = [
    ("tap", "laser-1", "fanny"), ("tap", "laser-1", "emile"), ("tap", "laser-1", "alice"),
    ("job", "laser-1", "boite.lbrn2", 3),
    ("tap", "cnc-1", "stranger"), ("tap", "cnc-1", "gilles"), ("tap", "cnc-1", "bruno"),
    ("job", "cnc-1", "plateau.nc", 4),
    ("tap", "printer-1", "chloe"), ("tap", "embroidery-1", "karim"),
    ("tap", "printer-1", "chloe"), ("job", "printer-1", "robot.gcode", 7),
    ("tap", "embroidery-1", "diane"), ("tap", "embroidery-1", "karim"),
    ("tap", "embroidery-1", "diane"), ("job", "embroidery-1", "ecusson.dst", 3),
    ("tap", "laser-1", "alice"), ("tap", "cnc-1", "bruno"), ("tap", "printer-1", "chloe"),
    ("tap", "embroidery-1", "diane"),
]


def run_scenario(link: MqttLink, topics: Topics, stop: threading.Event, step_s: float,
                 once: bool = False) -> int:
    """Tap badges from the script until ``stop``; returns the number of taps sent."""
    sent = 0
    while not stop.is_set():
        for action, machine, *args in SCENARIO:
            if stop.wait(step_s):
                return sent
            if action == "tap":
                link.publish(topics.sim_tap(machine), encode_sim_tap(BADGE[args[0]]))
            else:
                name, steps = args
                link.publish(topics.sim_job(machine), encode_sim_job(name, steps * step_s))
            sent += 1
        if once:
            return sent
    return sent
