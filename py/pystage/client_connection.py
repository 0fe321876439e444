"""One accepted client socket: its frame decoder, and the reply bytes it has not taken yet."""
import socket
from typing import Optional

from .frame_decoder import FrameDecoder

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
        self._unsent: Optional[memoryview] = None

    @property
    def has_unsent(self) -> bool:
        return self._unsent is not None

    def recv(self) -> bytes:
        return self.sock.recv(RECV_SIZE)

    def send(self, data: bytes) -> bool:
        """Send what the socket takes now; keep the rest. True when nothing is left over."""
        if self._unsent is not None:
            data = self._unsent.tobytes() + data
            self._unsent = None
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        if sent < len(data):
            self._unsent = memoryview(data)[sent:]
            return False
        return True

    def send_more(self) -> bool:
        """Continue a partial send. True when everything has gone."""
        if self._unsent is None:
            return True
        try:
            sent = self.sock.send(self._unsent)
        except (BlockingIOError, InterruptedError):
            return False
        self._unsent = self._unsent[sent:] if sent < len(self._unsent) else None
        return self._unsent is None

    def flush_blocking(self, timeout: float) -> None:
        """Push out what is left, waiting at most about `timeout` seconds (before a close or an exit)."""
        if self._unsent is None:
            return
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(self._unsent)
            self._unsent = None
        finally:
            self.sock.setblocking(False)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._unsent = None
            try:
                self.sock.close()
            except OSError:
                pass
