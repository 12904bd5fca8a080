"""The service's commands: ``serve`` and ``db upgrade``.

``python -m service.cli`` (or ``paced-server``) runs them on their own; the client's ``paced``
command adds them through the ``paced.commands`` entry point (packaging/server/pyproject.toml)
when the server is installed. Each loads the service only when it runs, and nothing here
imports the client: the service never depends on it.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from service.settings import Settings

# The exit status of a refused start (as argparse's for a usage error).
EXIT_REFUSED = 2
LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """True for hosts only this machine can reach: localhost, 127.0.0.0/8, ::1."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def exposure_refusal(host: str, settings: Settings) -> str | None:
    """Why `serve` must not start on `host` with these settings, or None if it may."""
    if settings.admin_token or is_loopback(host) or settings.allow_unauthenticated_network:
        return None
    return (
        f"refusing to serve on {host} without authentication: every client that can reach it "
        "could read and write every dataset and run. Set PACED_ADMIN_TOKEN (clients then send "
        "`Authorization: Bearer <token>`), or serve on 127.0.0.1, or, if something in front "
        "already restricts access (a private network, an authenticating proxy), pass "
        "--allow-unauthenticated-network (or set PACED_ALLOW_UNAUTHENTICATED_NETWORK=1)."
    )


def _serve(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    if args.database_url:
        overrides["database_url"] = args.database_url
    if args.allow_unauthenticated_network:
        overrides["allow_unauthenticated_network"] = True
    settings = Settings(**overrides)
    # Before anything else (migrations included): an exposed open service must not start.
    refusal = exposure_refusal(args.host, settings)
    if refusal is not None:
        print(f"paced serve: error: {refusal}", file=sys.stderr)
        return EXIT_REFUSED
    if not settings.admin_token and not is_loopback(args.host):
        logging.getLogger("paced").warning(
            "!!! serving WITHOUT authentication on %s (--allow-unauthenticated-network): "
            "every client that can reach it can read and write every dataset and run. !!!",
            args.host,
        )

    import uvicorn

    from service import migrate
    from service.app import create_app
    from service.heap import freeze_startup_heap

    logging.getLogger("paced").info("database: %s", describe_database(settings.database_url))
    migrate.upgrade(settings.database_url)
    if args.workers > 1:
        from service import workers

        return workers.serve(args.workers, args.host, args.port, overrides, args.graceful_timeout)
    app = create_app(settings)
    freeze_startup_heap()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=settings.log_level,
        access_log=settings.access_log,
        timeout_graceful_shutdown=args.graceful_timeout,
    )
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    from service import migrate

    url = args.database_url or Settings().database_url
    migrate.upgrade(url, args.revision)
    print(f"database at {url} upgraded to {args.revision}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the service's commands to a command line's sub-commands."""
    serve = sub.add_parser("serve", help="migrate the database, then serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--database-url", default=None, help="default: $PACED_DATABASE_URL or sqlite:///paced.db"
    )
    serve.add_argument(
        "--graceful-timeout",
        type=float,
        default=30.0,
        help="seconds in-flight requests get on SIGTERM",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes, each with its own SO_REUSEPORT socket (try one per core)",
    )
    serve.add_argument(
        "--allow-unauthenticated-network",
        action="store_true",
        help="serve beyond loopback without PACED_ADMIN_TOKEN (refused otherwise); only "
        "behind something that already restricts access. Env: "
        "PACED_ALLOW_UNAUTHENTICATED_NETWORK=1",
    )
    serve.set_defaults(func=_serve)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="run migrations up to a revision (default head)")
    upgrade.add_argument("--database-url", default=None)
    upgrade.add_argument("--revision", default="head")
    upgrade.set_defaults(func=_db_upgrade)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paced", description=__doc__.splitlines()[0])
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse, set up logging, run the chosen command (this one and the `paced` command)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parser.parse_args(argv)
    return int(args.func(args))


def describe_database(url: str) -> str:
    """The database as a log line names it: a SQLite file by its absolute path (the default
    one is relative to the working directory), any other by its URL without password."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
        return f"SQLite file {Path(parsed.database).resolve()}"
    return parsed.render_as_string(hide_password=True)


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
