"""The node: one machine's agent, its collaborators and its journal.

What other parts use is exported here (the CLI builds a ``NodeAgent``; tests and tools
read a ``Journal``); the modules say which concern each holds (docs/design.md, "The node
package").
"""

from gateway.node.agent import NodeAgent
from gateway.node.journal import Journal, JournalUnavailable, PendingEvent
from gateway.node.sessions import OpenSession

__all__ = ["Journal", "JournalUnavailable", "NodeAgent", "OpenSession", "PendingEvent"]
