"""The gateway's vocabulary and generic infrastructure, shared by the node and the hub.

Nothing here imports anything else from ``gateway``: every other package may build on
these modules, so they must never pull a driver, the wire contract or a database in.
"""
