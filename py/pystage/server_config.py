"""Everything a server is started with."""
from dataclasses import dataclass, field
from typing import Optional, Tuple

from .frame_format import DEFAULT_MAX_FRAME_BYTES

DEFAULT_INLINE_LIMIT = 1024 * 1024
# Seconds a connection may stay without saying hello; each one holds a socket and a buffer until then.
DEFAULT_HELLO_TIMEOUT = 10.0


@dataclass(frozen=True)
class ServerConfig:
    python_path: str
    uniq: str
    # Further sys.path entries after python_path; model and data files may lie in any of them.
    more_python_paths: Tuple[str, ...] = ()
    # Further directories model and data files may lie in (the folders of the files the user named).
    allow_roots: Tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 0
    unix_socket: Optional[str] = None
    spool_dir: Optional[str] = None
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    inline_limit: int = DEFAULT_INLINE_LIMIT
    # A model output whose JSON is larger fails its message (OutputTooLarge).
    max_output_bytes: int = 64 * 1024 * 1024
    # NaN and infinities in outputs: null instead of a BadModelOutput error.
    nan_as_null: bool = False
    # Kept out of repr so the token can never end up in a log line or a traceback.
    token: Optional[str] = field(default=None, repr=False)
    # Where the JSON log goes (the parent-death path writes there directly).
    log_fd: int = 2
    hello_timeout: float = DEFAULT_HELLO_TIMEOUT
