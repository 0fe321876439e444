"""Encoding of protocol v1 frames."""
from .frame_format import BEGIN, END, HEADER, VERSION_MD5, checksum_field

_pack_header = HEADER.pack


def encode_frame(payload: bytes, version: int = VERSION_MD5) -> bytes:
    """One whole frame around `payload`; `version` chooses the checksum (see frame_format)."""
    return b"".join((_pack_header(BEGIN, version, checksum_field(version, payload), len(payload)), payload, END))
