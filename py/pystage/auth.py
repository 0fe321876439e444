"""Who may use the server: the shared-token check of `hello`, as the default admission of a request."""
import hmac
from typing import Any, Optional

from .protocol import HELLO, NOT_AUTHENTICATED, RequestError
from .request_parser import ParsedRequest

# What a connection that has not said hello is told when it asks for anything else.
HELLO_FIRST = "the first request must be hello with the token"


def not_authenticated(message: str) -> RequestError:
    """The -4 error a refused connection gets before it is closed."""
    return RequestError("NotAuthenticated", message, NOT_AUTHENTICATED)


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

    def verify(self, admitted: bool, request: ParsedRequest) -> Optional[RequestError]:
        """None when `request` may run on a connection (`admitted` or not yet); else the -4 error refusing it.

        Without a token everything runs. With one, a connection runs nothing before a hello with the
        token, and a later hello must carry it too (a wrong one closes even an admitted connection)."""
        if self._token is None:
            return None
        is_hello = request.cmd == HELLO and request.error is None
        if admitted and not is_hello:
            return None
        if is_hello and self.accepts(request.options.get("Token")):
            return None
        return not_authenticated("wrong or missing token" if request.cmd == HELLO else HELLO_FIRST)
