"""The listening socket: TCP on an explicit host, or a Unix socket only its owner can use."""
import os
import socket
import stat
from typing import NamedTuple, Optional, Tuple


class ListenAddress(NamedTuple):
    host: Optional[str]
    port: Optional[int]
    unix_socket: Optional[str]


def open_listener(host: str, port: int, unix_socket: Optional[str]) -> Tuple[socket.socket, ListenAddress]:
    if unix_socket is not None:
        return _open_unix(unix_socket)
    return _open_tcp(host, port)


def _open_tcp(host: str, port: int) -> Tuple[socket.socket, ListenAddress]:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(64)
        listener.setblocking(False)
    except BaseException:
        listener.close()
        raise
    bound = listener.getsockname()
    return listener, ListenAddress(bound[0], bound[1], None)


def _open_unix(path: str) -> Tuple[socket.socket, ListenAddress]:
    path = os.path.abspath(path)
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)  # left behind by a server that was killed; binding would fail on it
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # The umask makes the socket 0600 from the moment it exists: a chmod after bind leaves a window.
        old_umask = os.umask(0o177)
        try:
            listener.bind(path)
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        listener.listen(64)
        listener.setblocking(False)
    except BaseException:
        listener.close()
        raise
    return listener, ListenAddress(None, None, path)
