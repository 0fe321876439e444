"""The fixed layout of a protocol v1 frame, shared by the encoder and the decoder."""
import struct

BEGIN = b"KPYS"
END = b"KPYE"
VERSION = 1
# BEGIN, VERSION, MD5 digest of the payload, payload LENGTH; big-endian like every number on the wire.
HEADER = struct.Struct(">4sB16sI")
HEADER_SIZE = HEADER.size
TRAILER_SIZE = len(END)
DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024
