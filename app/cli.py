"""The `hospital-api` command: serve, migrate, create-admin, seed-demo, purge-expired-tokens,
audit-verify."""

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import ConfigError, exit_for, get_settings
from app.core.db import create_engine, create_sessionmaker


def _with_sessionmaker(
    work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[Any]],
) -> Any:
    async def run() -> Any:
        engine = create_engine(get_settings())
        try:
            return await work(create_sessionmaker(engine))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = get_settings()
    settings.signing_key()  # refuse to start without a production key, before forking
    uvicorn.run(
        "app.main:app",
        host=args.host,
        port=args.port,
        workers=args.workers or settings.web_concurrency,
        proxy_headers=False,  # the app believes forwarded headers itself (core.proxies)
        access_log=False,
        timeout_graceful_shutdown=args.graceful_timeout,
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from alembic import command

    from app.migrations import alembic_config

    command.upgrade(alembic_config(get_settings().database_url), args.revision)
    return 0


def cmd_create_admin(args: argparse.Namespace) -> int:
    from app.auth.passwords import password_problem
    from app.users.bootstrap import create_admin

    password = os.environ.get("ADMIN_PASSWORD") or getpass.getpass("Password: ")
    problem = password_problem(password, args.username)
    if problem:
        print(f"password refused: {problem}", file=sys.stderr)
        return 2
    created = _with_sessionmaker(
        lambda maker: create_admin(maker, args.username, password, args.email)
    )
    print(f"admin {args.username!r} {'created' if created else 'already exists'}")
    return 0


def cmd_seed_demo(args: argparse.Namespace) -> int:
    from app.demo import present_accounts, seed

    settings = get_settings()
    if settings.environment == "production":
        print("seed-demo is for development only (ENVIRONMENT=production)", file=sys.stderr)
        return 2
    credentials = _with_sessionmaker(lambda maker: seed(maker, only_if_empty=args.if_empty))
    if credentials is None:
        print("database already has users: demo data not added")
        # `make run` runs this at every start: show the demo accounts for as long as they work.
        credentials = _with_sessionmaker(present_accounts)
        if not credentials:
            return 0
    print("Demo data for DEVELOPMENT ONLY. Log in at /docs (Authorize) with:")
    for role, username, password in credentials:
        print(f"  {role:8} {username:20} {password}")
    return 0


def cmd_purge_expired_tokens(_args: argparse.Namespace) -> int:
    from app.auth.maintenance import purge_expired

    counts = _with_sessionmaker(purge_expired)
    print(", ".join(f"{name}: {count} removed" for name, count in counts.items()))
    return 0


def cmd_audit_verify(_args: argparse.Namespace) -> int:
    from app.audit.verify import ChainReport, verify_chain

    async def verify(maker: async_sessionmaker[AsyncSession]) -> ChainReport:
        async with maker() as session:
            return await verify_chain(session)

    report: ChainReport = _with_sessionmaker(verify)
    if report.ok:
        print(f"audit chain ok: {report.events} events verified")
        return 0
    print(
        f"audit chain BROKEN at event {report.first_bad_event_id} "
        f"({report.events} events verified before it)",
        file=sys.stderr,
    )
    return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hospital-api", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the API with uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=0, help="default: WEB_CONCURRENCY")
    serve.add_argument("--graceful-timeout", type=int, default=20)
    serve.set_defaults(handler=cmd_serve)

    migrate = commands.add_parser("migrate", help="upgrade the database schema")
    migrate.add_argument("revision", nargs="?", default="head")
    migrate.set_defaults(handler=cmd_migrate)

    admin = commands.add_parser(
        "create-admin", help="create an admin (password from ADMIN_PASSWORD or a prompt)"
    )
    admin.add_argument("username")
    admin.add_argument("--email")
    admin.set_defaults(handler=cmd_create_admin)

    demo = commands.add_parser("seed-demo", help="add demo data (development only)")
    demo.add_argument("--if-empty", action="store_true", help="only into a database with no users")
    demo.set_defaults(handler=cmd_seed_demo)

    purge = commands.add_parser(
        "purge-expired-tokens", help="remove revocations, logins and counters past their expiry"
    )
    purge.set_defaults(handler=cmd_purge_expired_tokens)

    verify = commands.add_parser(
        "audit-verify", help="recompute the audit hash chain; exit 1 when it is broken"
    )
    verify.set_defaults(handler=cmd_audit_verify)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except ConfigError as error:
        exit_for(error)
    return code


if __name__ == "__main__":
    sys.exit(main())
