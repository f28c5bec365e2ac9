"""What every ``fabgate`` command shares: the ``--config`` option and stopping on signals.

``--config FILE`` used to sit at a different level in each command (before ``credit``'s
own subcommand, after ``user add``'s, only on ``audit verify``), so whoever had learnt
one command got the next one wrong. :func:`config_option` puts it on a command and on
every one of its subcommands, so ``fabgate credit --config F add ...`` and
``fabgate credit add ... --config F`` both work, as for every command that reads a
configuration file.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

log = logging.getLogger("fabgate")

# The attribute main() checks: the parser whose usage a missing --config is reported with.
CONFIG_REQUIRED_BY = "config_required_by"


def config_option(
    parser: argparse.ArgumentParser,
    *subcommands: argparse.ArgumentParser,
    what: str = "the hub's configuration file",
    required: bool = True,
) -> None:
    """Accept ``--config FILE`` on ``parser`` and on each of its ``subcommands``.

    The option is declared with ``default=SUPPRESS`` at every level: argparse copies a
    subcommand's values over its parent's, and a default there would erase a
    ``--config`` given before the subcommand. Whether it was given at all is checked
    once parsing is done (``main``), against the deepest parser, so the error shows the
    usage of the command the user typed.
    """
    for p in (parser, *subcommands):
        p.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help=what)
        if required:
            p.set_defaults(**{CONFIG_REQUIRED_BY: p})


def missing_config(args: argparse.Namespace) -> argparse.ArgumentParser | None:
    """The parser to report with when a command needs ``--config`` and did not get it."""
    parser = getattr(args, CONFIG_REQUIRED_BY, None)
    return parser if parser is not None and not hasattr(args, "config") else None


def stop_on_signals(event: threading.Event) -> None:
    """SIGTERM (systemd) and SIGINT (Ctrl-C) set ``event``: the command stops cleanly."""

    def handler(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping", signal.Signals(signum).name)
        event.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
