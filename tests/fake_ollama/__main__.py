"""Command line: python -m tests.fake_ollama --port 11500 [options]."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .app import create_app
from .models import DEFAULT_MODELS
from .state import Config


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.fake_ollama", description="Fake Ollama server for tests."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11434)
    parser.add_argument(
        "--models",
        default=",".join(DEFAULT_MODELS),
        help="comma-separated installed models ('' for none)",
    )
    parser.add_argument("--version", default="0.33.0")
    parser.add_argument("--pace-ms", type=float, default=0.0, help="delay between tokens")
    parser.add_argument(
        "--first-byte-ms",
        type=float,
        default=0.0,
        help="delay before the first byte (simulated load)",
    )
    parser.add_argument("--tokens", type=int, default=12, help="default generation length")
    parser.add_argument("--parallel", type=int, default=0, help="model slots (0: no limit)")
    parser.add_argument("--max-queue", type=int, default=512, help="queue beyond the slots")
    parser.add_argument("--fast", action="store_true", help="coalesce stream writes")
    parser.add_argument(
        "--registry", default=None, help="comma-separated pullable models (default: built-ins)"
    )
    return parser.parse_args(argv)


def _names(text: str) -> list[str]:
    return [m.strip() for m in text.split(",") if m.strip()]


def main(argv: list[str] | None = None) -> None:
    """Run the server in a single process until terminated."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    config = Config(
        models=_names(args.models),
        version=args.version,
        pace_ms=args.pace_ms,
        first_byte_ms=args.first_byte_ms,
        tokens=args.tokens,
        parallel=args.parallel,
        max_queue=args.max_queue,
        fast=args.fast,
        registry=None if args.registry is None else _names(args.registry),
    )
    app = create_app(config)

    @app.after_server_start
    async def announce(*_: Any) -> None:
        print(f"fake-ollama listening on {args.host}:{args.port}", flush=True)

    app.run(
        host=args.host,
        port=args.port,
        single_process=True,
        access_log=False,
        motd=False,
        debug=False,
        auto_reload=False,
    )


if __name__ == "__main__":
    main()
