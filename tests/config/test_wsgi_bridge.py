"""The web tier's thread pool bridge (config/wsgi_bridge.py), driven as ASGI.

No server and no database: an ASGI scope, a receive that hands out the body in
the chunks given, and a send that records the messages.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from django.http import HttpResponse, StreamingHttpResponse

from config.wsgi_bridge import PREREAD_BYTES, ThreadedWSGI

pytestmark = [pytest.mark.unit]


def serve(
    app: Any, chunks: list[bytes], *, length: int | None = None
) -> list[dict[str, Any]]:
    headers = [] if length is None else [(b"content-length", str(length).encode())]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    pending = list(chunks)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        body = pending.pop(0) if pending else b""
        return {"type": "http.request", "body": body, "more_body": bool(pending)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(ThreadedWSGI(app, workers=2)(scope, receive, send))
    return sent


class Recorder:
    """A WSGI app answering with a Django response; records what it saw."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.body = b""
        self.closed_in: str | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.body = environ["wsgi.input"].read()
        start_response("202 Accepted", [("Content-Type", "application/json")])
        original_close = self.response.close

        def close() -> None:
            self.closed_in = threading.current_thread().name
            original_close()

        self.response.close = close
        return self.response


def test_a_response_that_is_not_streamed_is_sent_whole_and_then_closed():
    app = Recorder(HttpResponse(b'{"id": 1}', status=202))
    sent = serve(app, [b'{"a":', b" 1}"], length=8)
    assert sent == [
        {
            "type": "http.response.start",
            "status": 202,
            "headers": [(b"content-type", b"application/json")],
        },
        {"type": "http.response.body", "body": b'{"id": 1}'},
    ]
    assert app.body == b'{"a": 1}'
    assert app.closed_in is not None
    assert app.closed_in.startswith("WSGI")  # in the view's thread


def test_a_streamed_response_is_sent_chunk_by_chunk():
    app = Recorder(StreamingHttpResponse(iter([b"one", b"two"])))
    sent = serve(app, [b"x"], length=1)
    assert [message["type"] for message in sent] == [
        "http.response.start",
        "http.response.body",
        "http.response.body",
        "http.response.body",
    ]
    assert [message.get("body") for message in sent[1:]] == [b"one", b"two", b""]
    assert [message.get("more_body", False) for message in sent[1:]] == [
        True,
        True,
        False,
    ]


def test_a_body_over_the_preread_size_or_without_a_length_is_read_whole():
    big = [b"x" * 40_000] * 3
    for chunks, length in ((big, PREREAD_BYTES + 1), ([b"ab", b"cd"], None)):
        app = Recorder(HttpResponse(b"ok"))
        sent = serve(app, chunks, length=length)
        assert app.body == b"".join(chunks)
        assert sent[-1] == {"type": "http.response.body", "body": b"ok"}
