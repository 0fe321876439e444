"""What one connection's hello negotiated: progress frames and the frames' checksum.

A client that says nothing gets protocol v1 as it always was (MD5 frames, no progress frames), so an
old client never sees a frame it does not know.
"""
from typing import Any, Callable, Dict, Optional

from .frame_format import CHECKSUM_VERSIONS, MD5, VERSION_MD5
from .progress import Progress, progress_option
from .protocol import RequestError

CHECKSUM_OPTION = "Checksum"


def checksum_option(options: Dict[str, Any]) -> Optional[str]:
    """hello's Checksum option: None when absent, else "md5" or "crc32"."""
    if CHECKSUM_OPTION not in options:
        return None
    value = options[CHECKSUM_OPTION]
    if value not in CHECKSUM_VERSIONS:
        raise RequestError("BadOption", f"Checksum must be one of {sorted(CHECKSUM_VERSIONS)}")
    return value


class Session:
    """One connection's negotiated settings; every successful hello sets all of them anew."""

    __slots__ = ("progress", "frame_version")

    def __init__(self, send: Callable[[bytes], None]) -> None:
        self.progress = Progress(send)
        # The VERSION (and so the checksum) of the frames this server sends on the connection.
        self.frame_version = VERSION_MD5

    def negotiate(self, options: Dict[str, Any]) -> Dict[str, Any]:
        """Apply hello's options (validated first, so a bad hello changes nothing); the Result fields to add."""
        interval_ms = progress_option(options)
        checksum = checksum_option(options)
        self.progress.negotiate(interval_ms)
        self.frame_version = CHECKSUM_VERSIONS[checksum or MD5]
        agreed: Dict[str, Any] = {}
        if interval_ms is not None:
            agreed["Progress"] = interval_ms
        if checksum is not None:
            agreed["Checksum"] = checksum
        return agreed
