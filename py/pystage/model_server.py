"""The server: one listening socket, one served connection at a time, replies in request order.

Single-threaded: a selector watches the listener, the served connection and connections that have
not said hello yet; models run synchronously in the loop. A parent-death watchdog thread is the only
other thread.
"""
import functools
import logging
import os
import platform
import select
import selectors
import signal
import socket
import sys
import time
from typing import Any, Dict, List, Optional

from .auth import TokenCheck, not_authenticated
from .client_connection import RECV_SIZE, ClientConnection
from .commands import CommandHandler
from .context import ServerContext
from .host_channel import HostRequestError
from .frame_decoder import ERROR, FRAME, SKIPPED
from .frame_encoder import encode_frame
from .frame_format import VERSION_MD5
from . import hop_trace
from .json_log import JsonLogFormatter, capture_std_streams
from .listener import ListenAddress, open_listener
from .model_execution import ModelExecutor
from .model_registry import ModelRegistry
from .parent_watchdog import ParentWatchdog
from .paths import ConfinedPaths
from .session import Session
from .protocol import HELLO, HOST_REPLY_PREFIX, RequestError, decode_json, encode_json, error_payload
from .request_parser import ParsedRequest, parse_request, refused_frame
from .server_config import ServerConfig
from .shutdown import ShutdownRequested, ignore_shutdown_signals, install_shutdown_signals
from .spool import Spool

_log = logging.getLogger("pystage.server")

# Connections that have not said hello yet; beyond this the oldest is dropped (they cost a socket each).
MAX_PENDING = 16
# Bytes a connection may have buffered before it said hello (when a token is required): a hello is a few
# dozen bytes, so an unauthenticated peer never makes the server hold more than this per connection.
PRE_HELLO_MAX_BYTES = 8 * 1024
# How long a reply may take to leave before a close or an exit gives up on it.
FLUSH_TIMEOUT = 2.0


class ModelServer:
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

    Everything else is internal: the select loop (`_serve`), connection bookkeeping (`_accept`, `_admit`,
    `_reject`, `_drop`), sending (`_send_frame`) and the model's channel to the host (`_host_exchange`).
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
        address = self._address
        assert address is not None
        line = encode_json({"event": "ready", "host": address.host, "port": address.port,
                            "unixSocket": address.unix_socket, "pid": os.getpid(), "uniq": self.uniq})
        # Straight to fd 1 as UTF-8, whatever sys.stdout's buffering and encoding are.
        data = memoryview((line + "\n").encode("utf-8"))
        while data:
            data = data[os.write(1, data):]
        # From here on stdout belongs to nobody: fd 1 becomes stderr (for anything writing to the fd,
        # e.g. a model's subprocess) and sys.stdout/sys.stderr turn lines into log records.
        os.dup2(2, 1)
        capture_std_streams()

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
        if self._address is not None and self._address.unix_socket is not None:
            try:
                os.unlink(self._address.unix_socket)
            except OSError:
                pass
        if self._spool is not None:
            self._spool.remove()

    def _on_parent_death(self, parent_pid: int) -> None:
        # Runs in the watchdog thread while the main thread may be stuck in a model: write the log line
        # straight to the log fd (no logging locks), clean up files, and leave without unwinding anything.
        record = logging.LogRecord("pystage.server", logging.WARNING, __file__, 0,
                                   "parent process died: exiting", None, None)
        record.parentPid = parent_pid
        try:
            os.write(self.config.log_fd, (self._formatter.format(record) + "\n").encode("utf-8"))
        except OSError:
            pass
        self._remove_files()
        # Nobody is left to kill what the models started: take the whole process group down, this process
        # last (SIGKILL to the group includes it). Only when the server leads its group, as the stage starts
        # it; run by hand from a shell, the group may hold other processes that are not ours to kill.
        if os.getpgrp() == os.getpid():
            try:
                os.killpg(os.getpid(), signal.SIGKILL)
            except OSError:
                pass
        os._exit(0)

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
        """Send a model's hostRequest on the active connection and wait for the hostReply with its Seq.

        Runs inside a model's execute: every other frame read meanwhile joins the connection's backlog."""
        conn = self._active
        if conn is None or conn.closed:
            raise HostRequestError("no client is connected", "HostUnavailable")
        self._send_frame(conn, frame)
        try:
            conn.flush_blocking(max(0.001, deadline - time.monotonic()))
        except OSError as exc:
            self._drop(conn, f"send failed: {exc}")
            raise HostRequestError(f"the host request could not be sent: {exc}", "HostUnavailable") from exc
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HostRequestError("no answer from the host within the request's timeout", "HostRequestTimeout")
            readable, _, _ = select.select([conn.sock], [], [], remaining)
            if not readable:
                continue
            try:
                data = conn.recv()
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:
                self._drop(conn, f"receive failed: {exc}")
                raise HostRequestError(f"the connection to the host failed: {exc}", "HostUnavailable") from exc
            if not data:
                self._drop(conn, "closed by the client")
                raise HostRequestError("the client closed the connection", "HostUnavailable")
            answer: Optional[Dict[str, Any]] = None
            for event in conn.decoder.feed(data):
                if answer is None and event.event == FRAME and event.payload is not None \
                        and event.payload.startswith(HOST_REPLY_PREFIX):
                    reply = _parse_host_reply(event.payload)
                    if reply is not None and reply.get("Seq") == seq:
                        answer = reply
                    continue  # an answer to an earlier request that gave up: dropped
                conn.backlog.append(event)
            if answer is not None:
                return answer

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

    # --- admission -----------------------------------------------------------------------------------

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


def _parse_host_reply(payload: bytes) -> Optional[Dict[str, Any]]:
    try:
        value = decode_json(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if type(value) is dict else None


def _peer_name(peer: object) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer) or "unix"
