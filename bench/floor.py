"""The stack floor: a Falcon app that reads the body and answers a constant JSON, served by the
same HTTP layer, processes and threads as `rolebook serve` (api/waitress_server.py or
api/granian_server.py, rolebook's default worker count and threads, one SO_REUSEPORT socket per
worker). What rolebook does per request costs the difference between its row and this one.

    python -m bench.floor --server waitress --port 18080 [--workers N]

It runs until SIGTERM or SIGINT (its process group, as the bench stops every server).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import falcon

from rolebook.api.config import Config
from rolebook.api.server import BACKLOG, DRAIN_SECONDS, STOP_SIGNALS, listening_socket

ANSWER = b'{"results":[{"id":"r","actions":{"view":"allow"}}]}'


class Constant:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.bounded_stream.read()
        resp.data, resp.content_type = ANSWER, falcon.MEDIA_JSON

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.data, resp.content_type = b'{"status":"ok"}', falcon.MEDIA_JSON


def _is_check(request) -> bool:
    return request.path == "/v1/check"


def app() -> falcon.App:
    constant = falcon.App()
    constant.add_route("/v1/check", Constant())
    constant.add_route("/healthz", Constant())
    return constant


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    p.add_argument("--server", choices=("waitress", "granian"), default="waitress")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--workers", type=int, default=0, help="default: rolebook serve's")
    args = p.parse_args(argv)
    config = Config(host=args.host, port=args.port, workers=args.workers, server=args.server)
    if config.server == "granian":
        from rolebook.api import granian_server as http
    else:
        from rolebook.api import waitress_server as http
    # rolebook answers its checks on waitress's loop thread (api/request_lanes.py): so does this.
    lanes = {} if config.server == "granian" else {"on_loop": _is_check}
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # as rolebook's workers start
    children = []
    for _ in range(config.effective_workers):
        pid = os.fork()
        if pid == 0:
            sock = listening_socket(config.host, config.port, True)
            http.serve(app(), sock, config, lambda: None, backlog=BACKLOG,
                       drain_seconds=DRAIN_SECONDS, stop_signals=STOP_SIGNALS, **lanes)
            os._exit(0)
        children.append(pid)
    print(f"floor: {config.server}, {len(children)} workers x {config.effective_threads} "
          f"threads on http://{config.host}:{config.port}", file=sys.stderr, flush=True)
    signal.sigwait(set(STOP_SIGNALS))
    for pid in children:
        os.kill(pid, signal.SIGTERM)
    for pid in children:
        os.waitpid(pid, 0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
