"""Errors waitress answers itself, before Falcon sees the request (a body over the limit, a
malformed request line or header, headers too large), in the same problem+json as every other
error; and the channel that answers on the loop thread what the dispatcher keeps there
(api/request_lanes.py). Waitress lets a server choose its channel class and a channel its task
classes (the error task here, the request task in api/one_send.py); nothing is patched."""

from __future__ import annotations

import orjson
from waitress.channel import HTTPChannel
from waitress.task import ErrorTask

from rolebook.api.one_send import OneSendTask
from rolebook.api.problems import PROBLEM_TYPE

SLUGS = {400: "bad-request", 413: "payload-too-large", 431: "headers-too-large",
         501: "not-implemented"}


class ProblemErrorTask(ErrorTask):
    def execute(self):
        error = self.request.error
        body = orjson.dumps({"type": PROBLEM_TYPE + SLUGS.get(error.code, "server-error"),
                             "title": error.reason, "status": error.code,
                             "detail": str(error.body) or error.reason})
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/problem+json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class ProblemChannel(HTTPChannel):
    task_class = OneSendTask  # head and body in one send (api/one_send.py)
    error_task_class = ProblemErrorTask
    answer_on_loop = False  # set by the dispatcher, on the loop thread, as a request completes

    def handle_read(self):
        super().handle_read()
        # received() hands complete requests to the dispatcher while holding the requests lock,
        # which service() takes too: what the dispatcher kept for the loop is answered here.
        while self.answer_on_loop:
            self.answer_on_loop = False
            self.service()
