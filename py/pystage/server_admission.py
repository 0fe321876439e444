"""Admission of connections, as a mixin of ModelServer: which connection is the served one, which
still have to say hello, and refusing, dropping and forgetting them (the selector's bookkeeping).

The one hook, `verify_request`, is meant to be overridden (see ModelServer's docstring).
"""

import logging
import selectors
import time
from typing import List, Optional

from .auth import TokenCheck
from .client_connection import RECV_SIZE, ClientConnection
from .frame_encoder import encode_frame
from .protocol import RequestError, error_payload
from .request_parser import ParsedRequest
from .server_config import ServerConfig

_log = logging.getLogger("pystage.server")

# How long a reply may take to leave before a close or an exit gives up on it.
FLUSH_TIMEOUT = 2.0


class ConnectionAdmission:
    """The connections of a ModelServer: at most one admitted (`_active`), the rest before hello."""

    config: ServerConfig
    _tokens: TokenCheck
    _selector: selectors.BaseSelector
    _active: Optional[ClientConnection]
    _before_hello: List[ClientConnection]

    def verify_request(self, conn: ClientConnection, request: ParsedRequest) -> Optional[RequestError]:
        """Hook: None when `request` may run on `conn` (a new conn is then admitted); else the error refusing it."""
        return self._tokens.verify(conn.admitted, request)

    def _admit(self, conn: ClientConnection) -> None:
        old = self._active
        if old is not None and old is not conn:
            _log.info("connection replaced by a new one", extra={"conn": old.serial, "newConn": conn.serial})
            self._forget(old)
        if conn in self._before_hello:
            self._before_hello.remove(conn)
        conn.admitted = True
        conn.recv_limit = RECV_SIZE
        self._active = conn
        _log.info("client connected", extra={"conn": conn.serial, "peer": conn.peer})

    def _reject(self, conn: ClientConnection, cmd: Optional[str], req_id: Optional[int], error: RequestError) -> None:
        """Send the refusal (best effort, after any reply still unsent) and close."""
        _log.warning("connection refused", extra={
            "conn": conn.serial, "peer": conn.peer, "cmd": cmd, "id": req_id, "code": error.code,
            "type": error.error_type, "error": error.message})
        try:
            conn.send(encode_frame(error_payload(cmd, req_id, error)))
            conn.flush_blocking(FLUSH_TIMEOUT)
        except OSError:
            pass
        self._drop(conn, f"refused: {error.error_type}")

    def _drop(self, conn: ClientConnection, reason: str) -> None:
        was_active = conn is self._active
        self._forget(conn)
        if was_active:
            _log.info("client disconnected", extra={"conn": conn.serial, "reason": reason})
        else:
            _log.debug("connection closed", extra={"conn": conn.serial, "reason": reason})

    def _forget(self, conn: ClientConnection) -> None:
        if conn.closed:
            return
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.close()
        if conn is self._active:
            self._active = None
        elif conn in self._before_hello:
            self._before_hello.remove(conn)

    def _expire_before_hello(self) -> Optional[float]:
        """Drop connections that did not say hello in time; the select timeout until the next one is due."""
        if not self._before_hello:
            return None
        now = time.monotonic()
        for conn in [c for c in self._before_hello if c.hello_deadline <= now]:
            _log.warning("connection did not say hello in time: closed", extra={
                "conn": conn.serial, "peer": conn.peer, "helloTimeout": self.config.hello_timeout})
            self._drop(conn, "no hello in time")
        if not self._before_hello:
            return None
        return max(0.0, min(c.hello_deadline for c in self._before_hello) - now)
