"""Simulators of the machines and boards the drivers talk to, for the demo, tests and bench.

Each speaks the real link (a pty for serial controllers, a sensor object for current
clamps), so a driver pointed at one runs the same code as in a workshop.
"""
