#!/usr/bin/env python3
"""pystage's Python model server: `python3 py/server.py --python-path DIR --uniq STRING [...]`.

Prints one ready line on stdout once listening, logs JSON lines on stderr (or --log-fd), and serves
protocol v1 (see docs/protocol.md). The shared token is read from stdin (--token-stdin, as the stage
does) or from the PYSTAGE_TOKEN environment variable.
"""
import sys

if sys.version_info < (3, 9):
    sys.stderr.write(f"pystage needs Python 3.9+, this is {sys.version.split()[0]} ({sys.executable})\n")
    sys.exit(2)

import argparse  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
from typing import List, Optional, TextIO  # noqa: E402

from pystage.frame_format import DEFAULT_MAX_FRAME_BYTES
from pystage.json_log import LOG_LEVELS, JsonLogFormatter, configure_logging
from pystage.model_server import ModelServer
from pystage.server_config import DEFAULT_HELLO_TIMEOUT, DEFAULT_INLINE_LIMIT, ServerConfig
from pystage.shutdown import ShutdownRequested

TOKEN_VARIABLE = "PYSTAGE_TOKEN"


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port number (0-65535)")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _log_level(text: str) -> str:
    if text.lower() not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"{text} is not one of {', '.join(LOG_LEVELS)}")
    return text.lower()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="server.py", description="pystage Python model server (protocol v1). "
        f"With --token-stdin or {TOKEN_VARIABLE} set, every connection must start with hello carrying the token.")
    parser.add_argument("--host", default="127.0.0.1", help="TCP address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=0, help="TCP port; 0 picks a free one (default 0)")
    parser.add_argument("--unix-socket", metavar="PATH", help="listen on this Unix socket (mode 0600) instead of TCP")
    parser.add_argument("--python-path", metavar="DIR", required=True, action="append",
                        help="directory put on sys.path, in the order given (repeatable); model and data files "
                        "must lie inside one of these or an --allow-root; relative names resolve against the first")
    parser.add_argument("--allow-root", metavar="DIR", action="append", default=[],
                        help="a further directory model and data files may lie in (repeatable)")
    parser.add_argument("--uniq", metavar="STRING", default="pystage-{port}",
                        help="this server's unique name, in every log line; '{port}' is replaced by the bound port")
    parser.add_argument("--spool-dir", metavar="DIR",
                        help="directory for InputFile/OutputFile (default: a fresh temp dir, removed at exit)")
    parser.add_argument("--max-frame-bytes", type=_positive_int, default=DEFAULT_MAX_FRAME_BYTES,
                        help=f"largest frame payload accepted (default {DEFAULT_MAX_FRAME_BYTES})")
    parser.add_argument("--inline-limit", type=_positive_int, default=DEFAULT_INLINE_LIMIT,
                        help=f"results whose JSON is larger go to a spool file (default {DEFAULT_INLINE_LIMIT})")
    parser.add_argument("--max-output-bytes", type=_positive_int, default=64 * 1024 * 1024,
                        help="a model output whose JSON is larger fails its message (default 64 MiB)")
    parser.add_argument("--nan-as-null", action="store_true",
                        help="write NaN and infinities in model outputs as null (default: they fail the message)")
    parser.add_argument("--log-level", type=_log_level, default="info",
                        help="debug, info, warning, error or critical; pino's trace, warn, fatal and silent too")
    parser.add_argument("--token-stdin", action="store_true",
                        help=f"read the token from the first line of stdin; unlike {TOKEN_VARIABLE}, it then "
                        "never shows in /proc/PID/environ, to models or to the processes they start")
    parser.add_argument("--log-fd", type=int, default=2, metavar="FD",
                        help="write the JSON log to this inherited file descriptor (default 2, stderr); "
                        "stray writes to fd 1 and 2 then stay apart from the log records")
    parser.add_argument("--hello-timeout", type=_positive_float, default=DEFAULT_HELLO_TIMEOUT, metavar="SECONDS",
                        help=f"close connections that have not said hello by then (default {DEFAULT_HELLO_TIMEOUT:g})")
    return parser


def _read_token_line() -> str:
    """The first line of fd 0, read byte by byte (no buffer may swallow more); fd 0 then becomes /dev/null."""
    data = bytearray()
    while True:
        byte = os.read(0, 1)
        if not byte or byte == b"\n":
            break
        data += byte
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    return data.decode("utf-8").strip()


def _log_stream(fd: int) -> TextIO:
    """A line-buffered text stream on fd; not inherited, so a model's subprocess cannot write records to it."""
    if fd == 2:
        return sys.stderr
    os.set_inheritable(fd, False)
    return open(fd, "w", encoding="utf-8", buffering=1, closefd=False)


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    for directory in args.python_path + args.allow_root:
        if not os.path.isdir(directory):
            build_parser().error(f"{directory!r} (--python-path or --allow-root) is not a directory")
    # Popped so os.environ does not show it to models; the process environment (/proc/PID/environ) still
    # holds it, which is why the stage hands the token over on stdin instead.
    token = os.environ.pop(TOKEN_VARIABLE, None)
    if args.token_stdin:
        token = _read_token_line()
        if not token:
            # Never fall back to serving without a token because the hand-over failed.
            build_parser().error("--token-stdin: no token on the first line of stdin")
    formatter = JsonLogFormatter(args.uniq)
    try:
        log_stream = _log_stream(args.log_fd)
    except OSError as exc:
        build_parser().error(f"--log-fd {args.log_fd} cannot be written: {exc}")
    configure_logging(formatter, LOG_LEVELS[args.log_level], log_stream)
    config = ServerConfig(
        python_path=args.python_path[0], more_python_paths=tuple(args.python_path[1:]),
        allow_roots=tuple(args.allow_root), uniq=args.uniq, host=args.host, port=args.port,
        unix_socket=args.unix_socket, spool_dir=args.spool_dir, max_frame_bytes=args.max_frame_bytes,
        inline_limit=args.inline_limit, max_output_bytes=args.max_output_bytes, nan_as_null=args.nan_as_null, token=token or None, log_fd=args.log_fd,
        hello_timeout=args.hello_timeout)
    try:
        return ModelServer(config, formatter).run()
    except ShutdownRequested:
        return 0  # a signal while starting up: nothing was served yet, and nothing is left behind
    except Exception:
        logging.getLogger("pystage.server").exception("server failed to start or crashed")
        return 1


if __name__ == "__main__":
    sys.exit(main())
