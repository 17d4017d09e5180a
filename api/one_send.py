"""A response's head and body in one send, not two.

Waitress flushes every `write_soon` at once (its `send_bytes` is 1 and deprecated), and its task
writes the head and the first body chunk separately: each answer was two `sendto` calls and two
TCP segments, so the client woke twice. A Falcon answer is one chunk with a Content-Length, so
the head and that chunk go out together; anything else (chunked, HEAD, a body longer than its
Content-Length) takes waitress's own path.
"""

from __future__ import annotations

from waitress.task import WSGITask


class OneSendTask(WSGITask):
    def write(self, data):
        if self.wrote_header or not data or not self.complete:
            return super().write(data)
        head = self.build_response_header()  # decides chunked_response too
        self.wrote_header = True
        length = self.content_length
        if (not self.has_body or self.chunked_response or length is None
                or len(data) > length):
            self.channel.write_soon(head)
            return super().write(data)  # only the body now: the head is written
        self.content_bytes_written += len(data)
        self.channel.write_soon(head + data)
