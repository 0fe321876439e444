"""Echo server for bench/tools/socket-echo.ts: `echo_server.py tcp PORT` or `echo_server.py unix PATH`."""
import os
import socket
import sys


def main() -> None:
    kind, address = sys.argv[1], sys.argv[2]
    if kind == "unix":
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(address):
            os.unlink(address)
        listener.bind(address)
    else:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", int(address)))
    listener.listen(1)
    print(listener.getsockname()[1] if kind == "tcp" else address, flush=True)
    conn, _ = listener.accept()
    if kind == "tcp":
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        data = conn.recv(65536)
        if not data:
            break
        conn.sendall(data)
    if kind == "unix":
        os.unlink(address)


if __name__ == "__main__":
    main()
