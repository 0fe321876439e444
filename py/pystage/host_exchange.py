"""The model's channel to the host, server side: send a hostRequest on the active connection and wait
for the hostReply with its Seq, inside the model's execute.

Every other frame read meanwhile joins the connection's backlog, for the loop to serve after the model.
"""

import select
import time
from typing import Any, Callable, Dict, Optional

from .client_connection import ClientConnection
from .frame_decoder import FRAME
from .host_channel import HostRequestError
from .protocol import HOST_REPLY_PREFIX, decode_json


def exchange_with_host(conn: Optional[ClientConnection], frame: bytes, seq: int, deadline: float,
                       send_frame: Callable[[ClientConnection, bytes], None],
                       drop: Callable[[ClientConnection, str], None]) -> Dict[str, Any]:
    """Send `frame` on `conn` and return the hostReply with Seq `seq`; HostRequestError when none comes."""
    if conn is None or conn.closed:
        raise HostRequestError("no client is connected", "HostUnavailable")
    send_frame(conn, frame)
    try:
        conn.flush_blocking(max(0.001, deadline - time.monotonic()))
    except OSError as exc:
        drop(conn, f"send failed: {exc}")
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
            drop(conn, f"receive failed: {exc}")
            raise HostRequestError(f"the connection to the host failed: {exc}", "HostUnavailable") from exc
        if not data:
            drop(conn, "closed by the client")
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


def _parse_host_reply(payload: bytes) -> Optional[Dict[str, Any]]:
    try:
        value = decode_json(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if type(value) is dict else None
