"""Refuse oversized bodies before anything reads them (413), whatever the route."""

from __future__ import annotations

from rolebook.api.problems import Problem


class BodyLimitMiddleware:
    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes

    def process_request(self, req, resp) -> None:
        length = req.content_length
        if length is not None and length > self.max_bytes:
            raise Problem(413, "payload-too-large", "Payload too large",
                          f"the body has {length} bytes; the limit is {self.max_bytes}")
