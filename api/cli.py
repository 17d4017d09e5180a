"""The one `rolebook` entry point; each command lives in its own module under api/commands.

Command modules import only the standard library and the settings registry at the top, so
`rolebook --help` and the policy tools start without falcon, pony or PyJWT.
"""

from __future__ import annotations

import argparse
import sys

from rolebook.api.commands import COMMANDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rolebook", description="Policy-as-data access service and policy tooling."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(sub)
    for command in _leaves(parser):
        command.set_defaults(parser=command)
    return parser


def _leaves(parser: argparse.ArgumentParser):
    """Every parser that runs a command, so an unknown option is reported with its own usage."""
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not actions:
        yield parser
    for action in actions:
        for child in dict.fromkeys(action.choices.values()):
            yield from _leaves(child)


def main(argv: list[str] | None = None) -> int:
    args, unknown = build_parser().parse_known_args(argv)
    if unknown:
        args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
