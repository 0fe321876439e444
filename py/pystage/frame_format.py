"""The fixed layout of a protocol v1 frame, shared by the encoder and the decoder."""
import hashlib
import struct
import zlib

BEGIN = b"KPYS"
END = b"KPYE"
# VERSION names the frame's checksum: 1 is the MD5 digest of the payload (the protocol's default),
# 2 the CRC32 of the payload, big-endian, in the first 4 of the same 16 bytes and zeros after it.
# Both decoders take either at any time; a server sends 2 only on a connection whose hello asked for it.
VERSION = 1
VERSION_MD5 = 1
VERSION_CRC32 = 2
MD5 = "md5"
CRC32 = "crc32"
CHECKSUM_VERSIONS = {MD5: VERSION_MD5, CRC32: VERSION_CRC32}
# BEGIN, VERSION, CHECKSUM of the payload, payload LENGTH; big-endian like every number on the wire.
HEADER = struct.Struct(">4sB16sI")
HEADER_SIZE = HEADER.size
TRAILER_SIZE = len(END)
DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024

_md5 = hashlib.md5
_crc32 = zlib.crc32
_pack_crc = struct.Struct(">I12x").pack


def checksum_field(version: int, payload: bytes) -> bytes:
    """The 16 CHECKSUM bytes of a frame of `version` (VERSION_MD5 or VERSION_CRC32) around `payload`."""
    if version == VERSION_CRC32:
        return _pack_crc(_crc32(payload))
    return _md5(payload).digest()
