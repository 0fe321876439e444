"""The server: one listening socket, one served connection at a time, replies in request order.

Single-threaded: a selector watches the listener, the served connection and connections that have
not said hello yet; models run synchronously in the loop. A parent-death watchdog thread is the only
other thread.
"""
import functools
import logging
import os
import platform
import selectors
import socket
import sys
import time
from typing import Any, Dict, List, Optional

from .auth import TokenCheck, not_authenticated
from .client_connection import ClientConnection
from .commands import CommandHandler
from .context import ServerContext
from .frame_decoder import ERROR, FRAME, SKIPPED
from .frame_encoder import encode_frame
from .frame_format import VERSION_MD5
from . import hop_trace
from .json_log import JsonLogFormatter
from .host_exchange import exchange_with_host
from .listener import ListenAddress, open_listener
from .model_execution import ModelExecutor
from .model_registry import ModelRegistry
from .parent_watchdog import ParentWatchdog
from .paths import ConfinedPaths
from .session import Session
from .protocol import HELLO, HOST_REPLY_PREFIX
from .request_parser import parse_request, refused_frame
from .server_admission import FLUSH_TIMEOUT, ConnectionAdmission
from .server_config import ServerConfig
from .server_lifecycle import announce_ready, exit_on_parent_death, remove_files
from .shutdown import ShutdownRequested, ignore_shutdown_signals, install_shutdown_signals
from .spool import Spool

_log = logging.getLogger("pystage.server")

# Connections that have not said hello yet; beyond this the oldest is dropped (they cost a socket each).
MAX_PENDING = 16
# Bytes a connection may have buffered before it said hello (when a token is required): a hello is a few
# dozen bytes, so an unauthenticated peer never makes the server hold more than this per connection.
PRE_HELLO_MAX_BYTES = 8 * 1024


class ModelServer(ConnectionAdmission):
    """Serves protocol v1 on one listening socket to one admitted client at a time (see the module doc).

    For the caller (server.py):
    - `ModelServer(config, formatter)`: nothing opens yet.
    - `run()`: listen, announce readiness on stdout, serve until stopServer or a signal, clean up; the
      exit code.
    - `uniq`: the server's name in logs and replies, final once it listens ({port} filled in).

    Meant to be overridden (like socketserver.BaseServer's hooks), each called in the loop's thread:
    - `verify_request(conn, request)`: None when the request may run on the connection, else the error
      that refuses it and closes the connection. Asked for every request on a connection not admitted
      yet, and for every hello; the default is the shared-token check (auth.TokenCheck).

    Everything else is internal: the select loop (`_serve`, `_accept`, `_on_readable`), sending
    (`_send_frame`), connection bookkeeping (`_admit`, `_reject`, `_drop`: server_admission.py), the
    model's channel to the host (`_host_exchange`: host_exchange.py) and the process-level steps
    (ready line, file removal, parent death: server_lifecycle.py).
    """

    def __init__(self, config: ServerConfig, formatter: JsonLogFormatter) -> None:
        self.config = config
        self._formatter = formatter
        self._tokens = TokenCheck(config.token)
        self._selector = selectors.DefaultSelector()
        self._listener: Optional[socket.socket] = None
        self._address: Optional[ListenAddress] = None
        self._spool: Optional[Spool] = None
        self._handler: Optional[CommandHandler] = None
        self._active: Optional[ClientConnection] = None
        self._before_hello: List[ClientConnection] = []
        self._serial = 0
        self._stopping = False
        self.uniq = config.uniq

    # --- lifecycle -----------------------------------------------------------------------------------

    def run(self) -> int:
        """Serve until stopServer or a signal; the exit code (0 for an orderly stop)."""
        install_shutdown_signals()
        ParentWatchdog(self._on_parent_death).start()
        try:
            self._start()
            self._serve()
            _log.info("stopServer received: stopping")
        except ShutdownRequested as exc:
            _log.info("signal received: stopping", extra={"signal": str(exc)})
        finally:
            self._close_all()
            hop_trace.dump()
        _log.info("server stopped")
        return 0

    def _start(self) -> None:
        config = self.config
        python_path = os.path.realpath(config.python_path)
        python_paths = [python_path] + [os.path.realpath(p) for p in config.more_python_paths]
        # First on the path, in order, so models import their own helpers; the server's package stays reachable after.
        sys.path[0:0] = python_paths
        roots = python_paths + [os.path.realpath(r) for r in config.allow_roots]
        self._spool = Spool(config.spool_dir)
        self._listener, self._address = open_listener(config.host, config.port, config.unix_socket)
        self.uniq = config.uniq.replace("{port}", str(self._address.port) if self._address.port else "unix")
        self._formatter.uniq = self.uniq
        # Relative names resolve against the first python path; data may also live in the spool dir.
        data_paths = ConfinedPaths(python_path, [self._spool.path] + roots)
        self._context = ServerContext(self.uniq, self._address.host or "127.0.0.1", str(self._address.port or 0))
        self._context.channel.exchange = self._host_exchange
        registry = ModelRegistry(self.uniq, model_paths=ConfinedPaths(python_path, roots),
                                 data_paths=data_paths, context=self._context)
        executor = ModelExecutor(registry, self._spool, data_paths, config.inline_limit, config.max_frame_bytes,
                                 config.nan_as_null, config.max_output_bytes)
        # A host request or answer gets the same share of a frame as a reply's outputs.
        self._context.channel.max_payload = executor.reply_budget
        self._handler = CommandHandler(self.uniq, registry, executor)
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        _log.info("server listening", extra={
            "pid": os.getpid(), "parentPid": os.getppid(), "python": platform.python_version(),
            "host": self._address.host, "port": self._address.port, "unixSocket": self._address.unix_socket,
            "pythonPath": python_paths, "allowRoots": roots[len(python_paths):], "spoolDir": self._spool.path,
            "tokenRequired": self._tokens.required,
            "maxFrameBytes": config.max_frame_bytes, "inlineLimit": config.inline_limit})
        self._announce_ready()

    def _announce_ready(self) -> None:
        assert self._address is not None
        announce_ready(self._address, self.uniq)

    def _close_all(self) -> None:
        ignore_shutdown_signals()  # already on the way out: a signal now must not interrupt the cleanup
        for conn in [self._active, *self._before_hello]:
            if conn is not None:
                conn.close()
        self._active = None
        self._before_hello.clear()
        if self._listener is not None:
            self._listener.close()
        self._remove_files()
        self._selector.close()
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            pass

    def _remove_files(self) -> None:
        remove_files(self._address, self._spool)

    def _on_parent_death(self, parent_pid: int) -> None:
        exit_on_parent_death(parent_pid, self.config.log_fd, self._formatter, self._remove_files)

    # --- the loop ------------------------------------------------------------------------------------

    def _serve(self) -> None:
        select = self._selector.select
        while not self._stopping:
            for key, mask in select(self._expire_before_hello()):
                conn = key.data
                if conn is None:
                    self._accept()
                    continue
                if conn.closed:
                    continue
                try:
                    if mask & selectors.EVENT_WRITE:
                        self._on_writable(conn)
                    elif mask & selectors.EVENT_READ:
                        self._on_readable(conn)
                except Exception:
                    # Never expected; losing one connection beats losing the server and its models.
                    _log.exception("connection failed inside the server", extra={"conn": conn.serial})
                    self._drop(conn, "internal error")
                if self._stopping:
                    break

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            sock, peer = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            _log.warning("accept failed", extra={"error": str(exc)})
            return
        self._serial += 1
        conn = ClientConnection(sock, _peer_name(peer), self._serial, self.config.max_frame_bytes)
        conn.hello_deadline = time.monotonic() + self.config.hello_timeout
        if self._tokens.required:
            conn.recv_limit = PRE_HELLO_MAX_BYTES
        conn.session = Session(functools.partial(self._send_frame, conn))
        self._before_hello.append(conn)
        self._selector.register(sock, selectors.EVENT_READ, conn)
        _log.debug("connection accepted", extra={"conn": conn.serial, "peer": conn.peer})
        if len(self._before_hello) > MAX_PENDING:
            self._drop(self._before_hello[0], "too many connections waiting for hello")

    def _on_readable(self, conn: ClientConnection) -> None:
        try:
            data = conn.recv()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._drop(conn, f"receive failed: {exc}")
            return
        if not data:
            self._drop(conn, "closed by the client")
            return
        traced = hop_trace.now_ns() if hop_trace.RING is not None else 0
        skipped = 0
        handler = self._handler
        assert handler is not None
        # Events wait in the connection's backlog: a model's host request reads frames that arrive while it
        # waits for its answer, and appends them there, behind the ones already decoded.
        backlog = conn.backlog
        backlog.extend(conn.decoder.feed(data))
        channel = self._context.channel
        # Each reply leaves as soon as its request is done, so a request pipelined behind a slow one
        # does not hold the slow one's reply back (nor the other way round).
        while backlog:
            event = backlog.popleft()
            kind = event.event
            if kind == FRAME:
                assert event.payload is not None
                if event.payload.startswith(HOST_REPLY_PREFIX):
                    continue  # an answer that came after its request gave up waiting
                request = parse_request(event.payload)
            elif kind == ERROR:
                # A damaged frame is answered like a request refused with -3 (and admitted like one).
                request = refused_frame(event)
            else:
                if kind == SKIPPED:
                    skipped += event.skipped
                continue
            if not conn.admitted or request.cmd == HELLO:
                refusal = self.verify_request(conn, request)
                if refusal is not None:
                    self._reject(conn, request.cmd, request.req_id, refusal)
                    return
                if not conn.admitted:
                    self._admit(conn)
            channel.req_id = request.req_id
            try:
                payload = handler.handle(request, conn.session)
            finally:
                channel.req_id = None
            self._send_frame(conn, payload)
            if traced:
                hop_trace.request_done(request.req_id, traced)
            if handler.stop_requested:
                break
            if conn.closed:
                return  # the send failed: the rest was for a client that is gone
        if skipped:
            _log.warning("bytes skipped while looking for a frame start", extra={"conn": conn.serial, "bytes": skipped})
        if not conn.admitted and self._tokens.required and conn.decoder.buffered > PRE_HELLO_MAX_BYTES:
            # A frame announced bigger than any hello: refuse it before it is held in memory.
            self._reject(conn, None, None, not_authenticated(
                f"more than {PRE_HELLO_MAX_BYTES} bytes before hello: the first request must be a hello"))
            return
        if handler.stop_requested:
            self._finish(conn)

    def _host_exchange(self, frame: bytes, seq: int, deadline: float) -> Dict[str, Any]:
        """The model's channel to the host: see host_exchange.exchange_with_host."""
        return exchange_with_host(self._active, frame, seq, deadline, self._send_frame, self._drop)

    def _on_writable(self, conn: ClientConnection) -> None:
        try:
            drained = conn.send_more()
        except OSError as exc:
            self._drop(conn, f"send failed: {exc}")
            return
        if drained:
            # Reading resumes only now: a client that does not take its replies gets no more work done.
            self._selector.modify(conn.sock, selectors.EVENT_READ, conn)

    def _send_frame(self, conn: ClientConnection, payload: bytes) -> None:
        """Send one frame now, as far as the socket takes it (a reply or a progress frame)."""
        self._send(conn, encode_frame(payload, VERSION_MD5 if conn.session is None else conn.session.frame_version))

    def _send(self, conn: ClientConnection, data: bytes) -> None:
        if conn.closed:
            return
        try:
            drained = conn.send(data)
        except OSError as exc:
            self._drop(conn, f"send failed: {exc}")
            return
        if not drained:
            self._selector.modify(conn.sock, selectors.EVENT_WRITE, conn)

    def _finish(self, conn: ClientConnection) -> None:
        """After stopServer: make sure the reply left, then leave the loop."""
        if not conn.closed:
            try:
                conn.flush_blocking(FLUSH_TIMEOUT)
            except OSError:
                pass
        self._stopping = True



def _peer_name(peer: object) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer) or "unix"
