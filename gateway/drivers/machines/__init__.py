"""Machine-controller drivers: what the machine is doing, learnt over its own link."""
