"""`python -m dashboard.sandbox`: the Alma sandbox on http://127.0.0.1:12111 (see --help)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from decimal import Decimal
from pathlib import Path

import uvicorn

from .app import MAX_DEMO_INTENTS, build_app
from .model import AlmaRules
from .persistence import StateFileError
from .service import SandboxConfig, SandboxService
from .transport import SandboxH11Protocol

CONTROL_TOKEN_VARIABLE = "SANDBOX_CONTROL_TOKEN"  # noqa: S105 (a variable name)
MIN_CONTROL_TOKEN_LENGTH = 16


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
    parser.add_argument(
        "--refund-delay",
        type=int,
        default=300,
        metavar="SECONDS",
        help="time a refund stays pending before it settles, on the sandbox clock (default 300: 5 minutes)",
    )
    parser.add_argument(
        "--fee-percent",
        type=Decimal,
        default=Decimal("3.5"),
        metavar="PERCENT",
        help="the Alma fee's share of each captured amount (default 3.5; Stripe publishes no single Alma rate)",
    )
    parser.add_argument(
        "--fee-fixed", type=int, default=25, metavar="CENTS", help="the Alma fee's fixed part per payment (default 25)"
    )
    parser.add_argument("--public-url", help="base URL browsers use to reach the sandbox (default http://host:port)")
    parser.add_argument(
        "--control-token",
        default=os.environ.get(CONTROL_TOKEN_VARIABLE) or None,
        help=f"secret every /_sandbox/ request must carry (header Sandbox-Control-Token); required when --host "
        f"is not a loopback address. Default: ${CONTROL_TOKEN_VARIABLE}, which keeps it out of the process list",
    )
    args = parser.parse_args(argv)
    if not 0 < args.auth_window <= 7 * 24 * 3600:
        parser.error("--auth-window must be between 1 and 604800 seconds (7 days)")
    if not 50 <= args.min_amount <= args.max_amount <= 99_999_999:
        parser.error("--min-amount and --max-amount must satisfy 50 <= min <= max <= 99999999 (cents)")
    if not 0 <= args.seed_demo <= MAX_DEMO_INTENTS:
        parser.error(f"--seed-demo must be between 0 and {MAX_DEMO_INTENTS}")
    if not 0 <= args.refund_delay <= 30 * 24 * 3600:
        parser.error("--refund-delay must be between 0 and 2592000 seconds (30 days)")
    basis_points = args.fee_percent * 100
    if not (
        args.fee_percent.is_finite() and 0 <= basis_points <= 10_000 and basis_points == basis_points.to_integral()
    ):
        parser.error("--fee-percent must be between 0 and 100 with at most two decimals (e.g. 3.5)")
    if not 0 <= args.fee_fixed <= 10_000:
        parser.error("--fee-fixed must be between 0 and 10000 cents")
    if not 0 <= args.port <= 65_535:
        parser.error("--port must be between 0 and 65535")
    if args.control_token is not None and len(args.control_token) < MIN_CONTROL_TOKEN_LENGTH:
        parser.error(f"--control-token must be at least {MIN_CONTROL_TOKEN_LENGTH} characters")
    if not is_loopback(args.host) and args.control_token is None:
        parser.error(
            f"--host {args.host} lets other machines reach the sandbox: give --control-token (or "
            f"${CONTROL_TOKEN_VARIABLE}) so that only holders of it can reset it or move its clock"
        )
    return SandboxConfig(
        host=args.host,
        port=args.port,
        rules=AlmaRules(
            min_amount=args.min_amount,
            max_amount=args.max_amount,
            auth_window=args.auth_window,
            refund_delay=args.refund_delay,
            fee_basis_points=int(basis_points),
            fee_fixed=args.fee_fixed,
        ),
        seed_demo=args.seed_demo,
        state_path=args.state,
        public_url=args.public_url,
        control_token=args.control_token,
    )


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


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
