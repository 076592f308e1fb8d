"""`python -m dashboard.sandbox`: the Alma sandbox on http://127.0.0.1:12111 (see --help)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvicorn

from .app import build_app
from .model import AlmaRules
from .persistence import StateFileError
from .service import SandboxConfig, SandboxService
from .transport import SandboxH11Protocol


def parse_args(argv: list[str] | None = None) -> SandboxConfig:
    parser = argparse.ArgumentParser(prog="python -m dashboard.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--seed-demo", type=int, default=0, metavar="N", help="demo intents over the last 30 days")
    parser.add_argument("--state", type=Path, help="persist the account and clock offset in this file")
    parser.add_argument(
        "--auth-window",
        type=int,
        default=3600,
        metavar="SECONDS",
        help="time a customer has on Alma's page before the attempt expires",
    )
    parser.add_argument("--min-amount", type=int, default=5_000, metavar="CENTS", help="Alma minimum (50 EUR)")
    parser.add_argument("--max-amount", type=int, default=500_000, metavar="CENTS", help="Alma maximum (5,000 EUR)")
    parser.add_argument("--public-url", help="base URL browsers use to reach the sandbox (default http://host:port)")
    args = parser.parse_args(argv)
    if args.auth_window <= 0 or not 0 < args.min_amount <= args.max_amount:
        parser.error("--auth-window must be positive and 0 < --min-amount <= --max-amount")
    return SandboxConfig(
        host=args.host,
        port=args.port,
        rules=AlmaRules(min_amount=args.min_amount, max_amount=args.max_amount, auth_window=args.auth_window),
        seed_demo=args.seed_demo,
        state_path=args.state,
        public_url=args.public_url,
    )


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv)
    try:
        service = SandboxService(config)  # seeds or loads before the port opens: reachable means ready
    except StateFileError as error:
        sys.exit(f"python -m dashboard.sandbox: {error}")
    uvicorn.run(
        build_app(service),
        host=config.host,
        port=config.port,
        http=SandboxH11Protocol,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
