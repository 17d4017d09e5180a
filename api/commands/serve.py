"""`rolebook serve`: run the HTTP service with the settings of api/config.py."""

from __future__ import annotations

import logging

from rolebook.api.config import add_arguments, from_arguments


def register(sub) -> None:
    parser = sub.add_parser("serve", help="run the HTTP service (waitress)")
    add_arguments(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    config = from_arguments(args)
    from rolebook.api.logs import configure

    configure(config.log_level, config.log_format)
    # waitress warns "Task queue depth is N" for every request that waits for a thread: under
    # load, every request, at 4% of a check's CPU. Waiting shows in the latency histogram.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    from rolebook.api.server import serve

    return serve(config)
