"""uvicorn's HTTP protocols, dropping a connection whose request headers do not arrive whole in time.

uvicorn waits for a request's headers forever (its keep-alive timeout starts only after a response),
so a client that sends half a request holds a connection as long as it likes; enough of them and the
server has none left. The body has its own timeout in serve.py (408).

The protocol is uvicorn's fastest one installed: httptools (the `serve` extra installs it, as
`uvicorn[standard]` does), else h11, pure Python.

    >>> uvicorn.Config(app, http=dropping_after(10.0))
"""

from __future__ import annotations

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is not installed: h11 serves
    HttpToolsProtocol = None

#: How often a connection looks at how long its current request's headers have taken (seconds).
CHECK_EVERY = 1.0


class _Watch:
    """The timing both protocols share: `partial_since` is when the request whose headers are not in
    yet began (or when the connection opened), None while there is none."""

    timeout = 10.0

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.partial_since: float | None = self.loop.time()  # a request is expected
        self.watch = self.loop.call_later(CHECK_EVERY, self.check)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.partial_since = None  # idle: uvicorn's keep-alive timeout applies

    def check(self) -> None:
        if self.transport.is_closing():
            return
        since = self.partial_since
        if since is not None and self.loop.time() - since > self.timeout:
            self.transport.close()
            return
        self.watch = self.loop.call_later(CHECK_EVERY, self.check)

    def connection_lost(self, exc) -> None:
        self.watch.cancel()
        super().connection_lost(exc)


class H11Dropping(_Watch, H11Protocol):
    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.DONE or self.partial_since is None:
            self.partial_since = self.loop.time()
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the headers are in (the body has its own)
            self.partial_since = None


if HttpToolsProtocol is not None:

    class HttpToolsDropping(_Watch, HttpToolsProtocol):
        def on_message_begin(self) -> None:  # a request's first byte
            super().on_message_begin()
            if self.partial_since is None:
                self.partial_since = self.loop.time()

        def on_headers_complete(self) -> None:  # the headers are in (the body has its own)
            self.partial_since = None
            super().on_headers_complete()


def dropping_after(timeout: float) -> type:
    """The protocol class for uvicorn's `http=` (httptools where installed), with this timeout."""
    base = H11Dropping if HttpToolsProtocol is None else HttpToolsDropping
    return type("SlowClientsDropped", (base,), {"timeout": timeout})
