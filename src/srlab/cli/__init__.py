"""The ``srlab`` command line: a thin layer that parses and calls library functions.

Each sub-command lives in its own module with ``add_parser(subparsers)`` and
``run(args) -> int``; the list below is the whole registry. Library errors
become one line on stderr and exit status 1; tracebacks only with ``--debug``.
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import signal
import sys

from .. import __version__
from . import compare, data, demo, eval, export, features, plot, train, upscale

COMMANDS = [eval, train, plot, data, features, upscale, compare, demo, export]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="srlab",
        description="Classic CNN super-resolution (SRCNN, FSRCNN, ESPCN): train, evaluate by the papers' protocol, upscale, look inside.",
    )
    parser.add_argument("--version", action="version", version=f"srlab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def _tolerate_undecodable_names() -> None:
    """Let file names that are not valid in the terminal's encoding be printed.

    Linux file names are bytes; Python carries undecodable ones as surrogate
    escapes, which a strict UTF-8 stdout (PYTHONIOENCODING=utf-8, as in many
    containers) refuses, and one such name in a batch would stop the batch.
    """
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def _dump_stacks_on_sigusr1() -> None:
    """``kill -USR1 PID`` prints every thread's stack to stderr: how to see where an
    hours-long training run (or one rank of a torchrun job) is stuck without stopping it."""
    stream = sys.__stderr__
    if not hasattr(signal, "SIGUSR1") or stream is None:
        return
    try:
        faulthandler.register(signal.SIGUSR1, file=stream, all_threads=True)
    except (OSError, ValueError):  # no real file descriptor behind stderr (embedded, some IDEs)
        pass


def main(argv: list[str] | None = None) -> int:
    _tolerate_undecodable_names()
    _dump_stacks_on_sigusr1()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.ERROR if args.quiet else logging.INFO, format="%(message)s", stream=sys.stderr, force=True)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("srlab: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, RuntimeError) as exc:
        if args.debug:
            raise
        print(f"srlab {args.command}: error: {exc}", file=sys.stderr)
        return 1
