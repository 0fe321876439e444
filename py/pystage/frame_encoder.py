"""Encoding of protocol v1 frames."""
import hashlib
from typing import Tuple

from .frame_format import BEGIN, END, HEADER, VERSION

_md5 = hashlib.md5
_pack_header = HEADER.pack


def frame_parts(payload: bytes) -> Tuple[bytes, bytes, bytes]:
    """The header, payload and trailer of one frame."""
    return _pack_header(BEGIN, VERSION, _md5(payload).digest(), len(payload)), payload, END


def encode_frame(payload: bytes) -> bytes:
    """One whole frame around `payload`."""
    return b"".join(frame_parts(payload))

