"""`tasklens serve | worker | migrate | demo | token` — one entry point for both run modes."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import ipaddress
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasklens.cli_errors import KNOWN_FAILURES, describe, safe_url
from tasklens.settings import Settings, load_settings

if TYPE_CHECKING:
    from tasklens.tokens import TokenRegistry


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from tasklens.api.app import create_app
    from tasklens.api.routes.live import MAX_MESSAGE_BYTES
    from tasklens.api.ws_protocol import LiveWebSocketProtocol
    from tasklens.database_file import DatabaseFileError, claim, sqlite_path
    from tasklens.redaction import uvicorn_log_config

    if not _is_loopback(settings.host):
        print(
            f"tasklens: listening on {settings.host}: reachable from other machines; "
            "every endpoint but /health still needs a token",
            file=sys.stderr,
        )
    if settings.is_postgres and (problem := asyncio.run(_schema_problem(settings))):
        print(f"tasklens: {problem}", file=sys.stderr)
        return 2
    if settings.embedded and (path := sqlite_path(settings.database_url)) is not None:
        try:  # held until this process exits; the app shares it (runtime.py)
            claim(path, new_database=args.new_database)
        except DatabaseFileError as exc:
            print(f"tasklens: {exc}", file=sys.stderr)
            return 2
    if settings.redis_url is not None:
        asyncio.run(_ping(settings.redis_url))  # unreachable: one line from main(), not uvicorn's
    mode = "embedded" if settings.embedded else "distributed"
    print(f"tasklens: {mode} mode, database {safe_url(settings.database_url)}", flush=True)

    def run(app: object, **extra: Any) -> None:
        # Every live frame is built once for all clients (ws_protocol.py): no per-client
        # compression. Forwarded headers are believed only from TASKLENS_TRUSTED_PROXIES.
        uvicorn.run(
            app,  # type: ignore[arg-type]
            host=settings.host,
            port=settings.port,
            ws=LiveWebSocketProtocol,
            ws_max_size=MAX_MESSAGE_BYTES,
            ws_per_message_deflate=False,
            proxy_headers=bool(settings.trusted_proxies),
            forwarded_allow_ips=settings.trusted_proxies or None,
            log_config=uvicorn_log_config(),
            timeout_graceful_shutdown=10,
            **extra,
        )

    if settings.api_workers > 1:  # each process builds its app from the same TASKLENS_* settings
        run("tasklens.api.app:create_app", factory=True, workers=settings.api_workers)
    else:
        run(create_app(settings), log_level="info")
    return 0


async def _schema_problem(settings: Settings) -> str | None:
    from tasklens.database import create_engine
    from tasklens.database_file import DatabaseFileError, claim_postgres
    from tasklens.migrate import SchemaOutOfDate
    from tasklens.runtime import check_schema

    engine = create_engine(settings.database_url)
    try:
        await check_schema(engine)
        if settings.embedded:  # said in one line here; the app takes the lock for its life
            await (await claim_postgres(settings.database_url)).close()
    except (SchemaOutOfDate, DatabaseFileError) as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot reach the database at {safe_url(settings.database_url)}: {exc}"
    finally:
        await engine.dispose()
    return None


async def _ping(redis_url: str) -> None:
    from tasklens.redis_connection import connect

    client = connect(redis_url)
    try:
        await client.ping()
    finally:
        await client.aclose()


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    if settings.redis_url is None:
        print(
            "tasklens: invalid setting TASKLENS_REDIS_URL: a worker needs Redis (in the "
            "embedded mode `tasklens serve` runs the tasks itself)",
            file=sys.stderr,
        )
        return 2
    asyncio.run(_ping(settings.redis_url))  # unreachable: one line, not taskiq's traceback
    command = [
        sys.executable,
        "-m",
        "taskiq",
        "worker",
        "tasklens.worker:broker",
        "--workers",
        str(args.workers),
        "--max-async-tasks",
        str(settings.worker_concurrency),
        "--shutdown-timeout",
        str(args.shutdown_timeout),
        # SIGTERM: running tasks get this long to finish; the rest are handed back (broker.py).
        "--wait-tasks-timeout",
        str(args.grace),
        "--ack-type",
        "when_saved",
        "--log-level",
        args.log_level,
    ]
    os.execv(sys.executable, command)  # noqa: S606  # replaces this process: signals reach taskiq directly


def _scheduler(settings: Settings, _: argparse.Namespace) -> int:
    if settings.redis_url is None or settings.schedules_file is None:
        missing = "REDIS_URL" if settings.redis_url is None else "SCHEDULES_FILE"
        print(
            f"tasklens: invalid setting TASKLENS_{missing}: the scheduler needs Redis and "
            "a schedules file",
            file=sys.stderr,
        )
        return 2
    asyncio.run(_ping(settings.redis_url))
    command = [
        sys.executable,
        "-m",
        "taskiq",
        "scheduler",
        "tasklens.scheduler:scheduler",
        # edits of the schedules file apply within a second (taskiq's default is a minute)
        "--update-interval",
        "1",
    ]
    os.execv(sys.executable, command)  # noqa: S606


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from tasklens import migrate

    if args.downgrade:
        migrate.downgrade(settings.database_url, args.downgrade)
    else:
        migrate.upgrade(settings.database_url)
    print(f"tasklens: database {safe_url(settings.database_url)} is at {args.downgrade or 'head'}")
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_demo_async(settings, args.count))


async def _demo_async(settings: Settings, count: int) -> int:
    """Goes through the running server, so it works in the embedded mode too."""
    import httpx

    from tasklens.database import create_engine
    from tasklens.tokens import Role, TokenRegistry, parse_token_entry

    url = f"http://{settings.host}:{settings.port}/api/v1/demo"
    engine = create_engine(settings.database_url)
    registry = TokenRegistry(engine, [])
    temporary = None
    operators = [parse_token_entry(raw, i) for i, raw in enumerate(settings.api_tokens)]
    token = next((t for _n, role, t in operators if role is Role.OPERATOR), None)
    if token is None:  # mint a short-lived token: whoever can reach the database may
        temporary = f"cli-demo-{os.getpid()}"
        token = await registry.create(temporary, Role.OPERATOR)
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            response = await client.post(
                url, json={"count": count}, headers={"Authorization": f"Bearer {token}"}
            )
    except httpx.TransportError as exc:
        print(
            f"tasklens: no server answers at {url} ({exc}); start it with `tasklens serve`",
            file=sys.stderr,
        )
        return 1
    finally:
        if temporary:
            await registry.delete(temporary)
        await engine.dispose()
    if response.status_code != 202:
        print(f"tasklens: the server said {response.status_code}: {response.text}", file=sys.stderr)
        return 1
    print(
        f"tasklens: enqueued {response.json()['enqueued']} demo tasks; watch them at "
        f"http://{settings.host}:{settings.port}/monitoring"
    )
    return 0


def _token(settings: Settings, args: argparse.Namespace) -> int:
    from tasklens import migrate
    from tasklens.database import create_engine
    from tasklens.tokens import InvalidTokenName, Role, TokenRegistry, check_token_name

    name = args.revoke if args.revoke is not None else args.name
    if name is not None:
        try:
            check_token_name(name)
        except InvalidTokenName as exc:
            print(f"tasklens: invalid token name: {exc}", file=sys.stderr)
            return 2
    if not settings.is_postgres:  # as `serve` does: a fresh SQLite file gets its tables
        migrate.upgrade(settings.database_url)

    async def run() -> int:
        engine = create_engine(settings.database_url)
        registry = TokenRegistry(engine, settings.api_tokens)
        try:
            if args.list:
                for entry in await registry.list():
                    print(f"{entry.name}\t{entry.role}\t{entry.source}")
                return 0
            if args.revoke is not None:
                return await _revoke(registry, args.revoke)
            token = await registry.create(args.name, Role(args.role))
        finally:
            await engine.dispose()
        if token is None:
            print(f"tasklens: a token named '{args.name}' exists already", file=sys.stderr)
            return 1
        print(token)
        return 0

    return asyncio.run(run())


async def _revoke(registry: TokenRegistry, name: str) -> int:
    if await registry.revoke(name):
        print(f"tasklens: token '{name}' revoked; every API process refuses it within 5 s")
        return 0
    if registry.is_configured(name):
        print(
            f"tasklens: token '{name}' comes from TASKLENS_API_TOKENS: remove it there and "
            "restart the API processes",
            file=sys.stderr,
        )
    else:
        print(f"tasklens: no token named '{name}'", file=sys.stderr)
    return 1


def _openapi(settings: Settings, args: argparse.Namespace) -> int:
    from tasklens.api.app import openapi_document

    text = openapi_document()
    if args.output == "-":
        print(text, end="")
    else:
        Path(args.output).write_text(text)
    return 0


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tasklens", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="API + dashboard (embedded mode: runs the tasks too)")
    serve.add_argument(
        "--new-database",
        action="store_true",
        help="embedded mode: start an empty database where the SQLite file went missing",
    )
    worker = sub.add_parser("worker", help="a TaskIQ worker (distributed mode)")
    worker.add_argument("--workers", type=int, default=1, help="worker processes")
    worker.add_argument("--shutdown-timeout", type=float, default=30.0)
    worker.add_argument(
        "--grace",
        type=float,
        default=30.0,
        help="on SIGTERM, seconds running tasks get to finish before they are handed back",
    )
    worker.add_argument(
        "--log-level", default="WARNING", help="INFO logs a line per task (costs ~25%% throughput)"
    )
    sub.add_parser("scheduler", help="taskiq's scheduler for TASKLENS_SCHEDULES_FILE")
    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("--downgrade", metavar="REVISION", help="e.g. base")
    demo = sub.add_parser("demo", help="enqueue demo tasks through the running server")
    demo.add_argument("--count", type=int, default=50)
    token = sub.add_parser("token", help="create (printed once), list or revoke API tokens")
    action = token.add_mutually_exclusive_group(required=True)
    action.add_argument("--name", help="create a token with this name (1-64 printable chars)")
    action.add_argument("--list", action="store_true", help="name, role and origin of each")
    action.add_argument("--revoke", metavar="NAME", help="delete a stored token")
    token.add_argument("--role", choices=["viewer", "operator"], default="operator")
    openapi = sub.add_parser("openapi", help="print the API contract (OpenAPI JSON)")
    openapi.add_argument("--output", default="-", help="file to write (default: stdout)")
    return parser


COMMANDS = {
    "serve": _serve,
    "worker": _worker,
    "migrate": _migrate,
    "scheduler": _scheduler,
    "demo": _demo,
    "token": _token,
    "openapi": _openapi,
}


# What `tasklens[server]` adds: these commands run the API or TaskLens's own tasks (whose
# analyses call GitHub over httpx). `migrate` and `token` work on the base install.
SERVER_COMMANDS = frozenset({"serve", "worker", "scheduler", "demo", "openapi"})
SERVER_MODULES = ("fastapi", "uvicorn", "websockets", "httpx")


def missing_server_modules() -> list[str]:
    return [name for name in SERVER_MODULES if importlib.util.find_spec(name) is None]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in SERVER_COMMANDS and (missing := missing_server_modules()):
        print(
            f"tasklens: `tasklens {args.command}` needs the server extra: "
            f'pip install "tasklens[server]" (missing: {", ".join(missing)})',
            file=sys.stderr,
        )
        return 2
    settings = load_settings()
    try:
        return COMMANDS[args.command](settings, args)
    except KNOWN_FAILURES as exc:
        print(describe(exc, settings), file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
