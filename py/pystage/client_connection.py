"""One accepted client socket: its frame decoder, and the reply bytes it has not taken yet."""
import socket
from collections import deque
from typing import Deque, Optional

from .frame_decoder import FrameDecoder, FrameEvent
from .session import Session

RECV_SIZE = 256 * 1024


class ClientConnection:
    """A non-blocking client socket. `admitted` once it may run commands (after hello when a token is set)."""

    def __init__(self, sock: socket.socket, peer: str, serial: int, max_frame_bytes: int) -> None:
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            # Replies are small and awaited one by one at times: Nagle would hold them back.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.peer = peer
        self.serial = serial
        self.decoder = FrameDecoder(max_frame_bytes)
        self.admitted = False
        self.closed = False
        # Until hello: when the server drops the connection if it has not said hello, and how much one recv
        # may take (small while unauthenticated, so a flood never sits in memory).
        self.hello_deadline = float("inf")
        self.recv_limit = RECV_SIZE
        # Set by the server once accepted: what hello negotiated (progress frames, checksum).
        self.session: Optional[Session] = None
        # Frames the socket did not take yet, oldest first. Kept as separate buffers (not joined) so that
        # replies queued behind a slow reader cost one append each, not a copy of everything queued.
        self._unsent: Deque[memoryview] = deque()
        # Decoded events not handled yet, oldest first (frames that came while a model waited on the host).
        self.backlog: Deque[FrameEvent] = deque()

    def recv(self) -> bytes:
        return self.sock.recv(self.recv_limit)

    def send(self, data: bytes) -> bool:
        """Send what the socket takes now; keep the rest. True when nothing is left over."""
        if self._unsent:
            self._unsent.append(memoryview(data))
            return self.send_more()
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        if sent < len(data):
            self._unsent.append(memoryview(data)[sent:])
            return False
        return True

    def send_more(self) -> bool:
        """Continue a partial send. True when everything has gone."""
        unsent = self._unsent
        while unsent:
            head = unsent[0]
            try:
                sent = self.sock.send(head)
            except (BlockingIOError, InterruptedError):
                return False
            if sent < len(head):
                unsent[0] = head[sent:]
                return False
            unsent.popleft()
        return True

    def flush_blocking(self, timeout: float) -> None:
        """Push out what is left, waiting at most about `timeout` seconds (before a close or an exit)."""
        if not self._unsent:
            return
        data = b"".join(self._unsent)
        self._unsent.clear()
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(data)
        finally:
            self.sock.setblocking(False)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._unsent.clear()
            try:
                self.sock.close()
            except OSError:
                pass
