#!/usr/bin/env python3
"""pystage's Python model server: `python3 py/server.py --python-path DIR --uniq STRING [...]`.

Prints one ready line on stdout once listening, logs JSON lines on stderr, and serves protocol v1
(see docs/protocol.md). The shared token comes from the PYSTAGE_TOKEN environment variable only.
"""
import sys

if sys.version_info < (3, 9):
    sys.stderr.write(f"pystage needs Python 3.9+, this is {sys.version.split()[0]} ({sys.executable})\n")
    sys.exit(2)

import argparse  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
from typing import List, Optional  # noqa: E402

from pystage.frame_format import DEFAULT_MAX_FRAME_BYTES
from pystage.json_log import LOG_LEVELS, JsonLogFormatter, configure_logging
from pystage.model_server import ModelServer
from pystage.server_config import DEFAULT_INLINE_LIMIT, ServerConfig
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


def _log_level(text: str) -> str:
    if text.lower() not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"{text} is not one of {', '.join(LOG_LEVELS)}")
    return text.lower()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="server.py", description="pystage Python model server (protocol v1). "
        f"If {TOKEN_VARIABLE} is set, every connection must start with hello carrying that token.")
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
    parser.add_argument("--log-level", type=_log_level, default="info",
                        help="debug, info, warning, error or critical; pino's trace, warn, fatal and silent too")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    for directory in args.python_path + args.allow_root:
        if not os.path.isdir(directory):
            build_parser().error(f"{directory!r} (--python-path or --allow-root) is not a directory")
    # Read once and removed, so model code (and anything it starts) cannot see it.
    token = os.environ.pop(TOKEN_VARIABLE, None)
    formatter = JsonLogFormatter(args.uniq)
    configure_logging(formatter, LOG_LEVELS[args.log_level], sys.stderr)
    config = ServerConfig(
        python_path=args.python_path[0], more_python_paths=tuple(args.python_path[1:]),
        allow_roots=tuple(args.allow_root), uniq=args.uniq, host=args.host, port=args.port,
        unix_socket=args.unix_socket, spool_dir=args.spool_dir, max_frame_bytes=args.max_frame_bytes,
        inline_limit=args.inline_limit, token=token or None)
    try:
        return ModelServer(config, formatter).run()
    except ShutdownRequested:
        return 0  # a signal while starting up: nothing was served yet, and nothing is left behind
    except Exception:
        logging.getLogger("pystage.server").exception("server failed to start or crashed")
        return 1


if __name__ == "__main__":
    sys.exit(main())
