"""Encoding of protocol v1 frames."""
import hashlib
from typing import List, Tuple

from .frame_format import BEGIN, END, HEADER, VERSION

_md5 = hashlib.md5
_pack_header = HEADER.pack


def frame_parts(payload: bytes) -> Tuple[bytes, bytes, bytes]:
    """The header, payload and trailer of one frame, left apart so the caller joins many frames with one copy."""
    return _pack_header(BEGIN, VERSION, _md5(payload).digest(), len(payload)), payload, END


def encode_frame(payload: bytes) -> bytes:
    """One whole frame around `payload`."""
    return b"".join(frame_parts(payload))


def append_frame(out: List[bytes], payload: bytes) -> None:
    """Append the parts of one frame to `out`, a list joined later into a single write."""
    out.append(_pack_header(BEGIN, VERSION, _md5(payload).digest(), len(payload)))
    out.append(payload)
    out.append(END)
