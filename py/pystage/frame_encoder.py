"""Encoding of protocol v1 frames."""
from typing import Tuple

from .frame_format import BEGIN, END, HEADER, VERSION_MD5, checksum_field

_pack_header = HEADER.pack


def frame_parts(payload: bytes, version: int = VERSION_MD5) -> Tuple[bytes, bytes, bytes]:
    """The header, payload and trailer of one frame; `version` chooses the checksum (see frame_format)."""
    return _pack_header(BEGIN, version, checksum_field(version, payload), len(payload)), payload, END


def encode_frame(payload: bytes, version: int = VERSION_MD5) -> bytes:
    """One whole frame around `payload`."""
    return b"".join(frame_parts(payload, version))
