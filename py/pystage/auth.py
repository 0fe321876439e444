"""The shared-token check of `hello`."""
import hmac
from typing import Any, Optional


class TokenCheck:
    """Holds the token the server was started with (if any); it is never logged or returned."""

    def __init__(self, token: Optional[str]) -> None:
        self._token = token.encode("utf-8") if token else None

    @property
    def required(self) -> bool:
        return self._token is not None

    def accepts(self, offered: Any) -> bool:
        if self._token is None:
            return True
        if not isinstance(offered, str):
            return False
        try:
            offered_bytes = offered.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate ("\ud800" is valid JSON) is never the token
            return False
        return hmac.compare_digest(offered_bytes, self._token)
