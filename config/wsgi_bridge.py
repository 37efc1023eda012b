"""a2wsgi's thread pool, with fewer hops between a view's thread and the event loop.

a2wsgi runs each HTTP request's WSGI call in a thread and hands every message
to the event loop and waits for it: the request body is read by a round trip
to the loop (`receive()`), and the response start, each body chunk and the
final empty chunk are three more, each waking the loop and then the thread
again. Here a small body (with a Content-Length of at most PREREAD_BYTES) is
read by the loop before the thread starts, and a response that Django does
not stream is handed to the loop in one go, without waiting: the thread goes
on to close the response (which gives its database connections back) while
the loop writes it. A streamed response, a large or chunked body and a WSGI
`write()` take a2wsgi's own path, message by message.
"""

from __future__ import annotations

import contextvars
import functools
from typing import Any

from a2wsgi.wsgi import Body, WSGIMiddleware, WSGIResponder, build_environ

# Bodies up to this size are read before the view's thread starts; larger
# ones (an import of products) are read by the view, as it parses them.
PREREAD_BYTES = 64 * 1024

Message = Any  # an ASGI event dict


class ThreadedWSGI(WSGIMiddleware):
    """Serve a WSGI application from a thread pool inside an ASGI server."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await super().__call__(scope, receive, send)
        responder = _Responder(self.app, self.executor, self.send_queue_size)
        return await responder(scope, receive, send)


class _Responder(WSGIResponder):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.held: Message | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = Body(self.loop, receive)
        if _declared_length(scope) <= PREREAD_BYTES:
            await _preread(body, receive)
        environ = build_environ(scope, body)
        sender = self.loop.create_task(self.sender(send))
        try:
            context = contextvars.copy_context()
            func = functools.partial(context.run, self.wsgi)  # type: ignore[call-arg]
            await self.loop.run_in_executor(
                self.executor, func, environ, self.start_response
            )
            await self.send_queue.put(None)
            await sender
            if self.exc_info is not None:
                raise self.exc_info[0].with_traceback(
                    self.exc_info[1], self.exc_info[2]
                )
        finally:
            if not sender.done():
                sender.cancel()

    def start_response(
        self,
        status: str,
        response_headers: list[tuple[str, str]],
        exc_info: Any = None,
    ) -> Any:
        """Hold the response's start until its body (or a write) follows."""
        self.exc_info = exc_info
        if not self.response_started:
            self.response_started = True
            self.held = {
                "type": "http.response.start",
                "status": int(status.split(" ", 1)[0]),
                "headers": [
                    (
                        name.strip().encode("latin1").lower(),
                        value.strip().encode("latin1"),
                    )
                    for name, value in response_headers
                ],
            }
        return self.write

    def write(self, chunk: bytes) -> None:
        self.release()
        self.send({"type": "http.response.body", "body": chunk, "more_body": True})

    def release(self) -> None:
        """Send the held response start, if any (a2wsgi's path: wait for the loop)."""
        held, self.held = self.held, None
        if held is not None:
            self.send(held)

    def wsgi(self, environ: Any, start_response: Any) -> None:
        iterable = self.app(environ, start_response)
        try:
            if getattr(iterable, "streaming", True) or self.held is None:
                for chunk in iterable:
                    self.write(chunk)
                self.release()
                self.send({"type": "http.response.body", "body": b""})
            else:
                messages = [
                    self.held,
                    {"type": "http.response.body", "body": b"".join(iterable)},
                ]
                self.held = None
                # The queue is empty (nothing was sent before) and holds more
                # than two; the loop runs this before it learns that the call
                # returned, so before the end marker.
                self.loop.call_soon_threadsafe(_put_all, self.send_queue, messages)
        finally:
            getattr(iterable, "close", lambda: None)()


def _put_all(queue: Any, messages: list[Message]) -> None:
    for message in messages:
        queue.put_nowait(message)


def _declared_length(scope: Any) -> int:
    """Return the request's Content-Length, or one more than PREREAD_BYTES."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                break
    return PREREAD_BYTES + 1


async def _preread(body: Body, receive: Any) -> None:
    """Read the whole (small) body into `body` from the event loop."""
    while body._has_more:
        message = await receive()
        if message["type"] != "http.request":
            # http.disconnect: the view's reads see the end of the body.
            body._has_more = False
            break
        body.buffer.extend(message.get("body", b""))
        body._has_more = message.get("more_body", False)
