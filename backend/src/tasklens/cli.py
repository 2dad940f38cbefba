"""`tasklens serve | worker | scheduler | migrate | demo | token | openapi`: one entry point
for both run modes."""

from __future__ import annotations

import argparse
import asyncio
import errno
import importlib.util
import ipaddress
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasklens.cli_errors import KNOWN_FAILURES, describe, safe_url
from tasklens.cli_help import HelpFormatter, settings_epilog, version
from tasklens.settings import Settings, load_settings

if TYPE_CHECKING:
    from tasklens.tokens import TokenRegistry

logger = logging.getLogger("tasklens.cli")


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from tasklens.api.app import create_app
    from tasklens.api.routes.live import MAX_MESSAGE_BYTES
    from tasklens.api.ws_protocol import LiveWebSocketProtocol
    from tasklens.database_file import DatabaseFileError, claim, sqlite_path
    from tasklens.log_setup import configure_logging

    log_config = configure_logging(settings)
    if not _is_loopback(settings.host):
        logger.warning(
            "tasklens: listening on %s: reachable from other machines; "
            "every endpoint but /health still needs a token",
            settings.host,
        )
    if problem := _port_problem(settings.host, settings.port):  # before any file or token
        print(f"tasklens: {problem}", file=sys.stderr)
        return 2
    if settings.is_postgres and (problem := asyncio.run(_schema_problem(settings))):
        print(f"tasklens: {problem}", file=sys.stderr)
        return 2
    if settings.embedded and (path := sqlite_path(settings.database_url)) is not None:
        try:  # held until this process exits; the app shares it (runtime.py)
            claim(path, new_database=args.new_database)
        except DatabaseFileError as exc:
            print(f"tasklens: {exc}", file=sys.stderr)
            return 2
    if not settings.embedded:  # Redis unreachable: one line from main(), not uvicorn's
        asyncio.run(_ping(settings.distributed_redis_url))
    mode = "embedded" if settings.embedded else "distributed"
    logging.getLogger("tasklens.announce").info(
        "tasklens: %s mode, database %s", mode, safe_url(settings.database_url)
    )

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
            log_config=log_config,  # the same lines as every other TaskLens process
            timeout_graceful_shutdown=10,
            **extra,
        )

    # Ctrl-C: uvicorn shuts down gracefully and returns (exit code 0). `./dev up` execs this
    # process rather than running it under just, which would report "terminated by signal".
    if settings.api_workers > 1:  # each process builds its app from the same TASKLENS_* settings
        run("tasklens.api.app:create_served_app", factory=True, workers=settings.api_workers)
    else:
        run(create_app(settings, settle_gc=True))
    return 0


def _port_problem(host: str, port: int) -> str | None:
    """Binds and releases host:port the way uvicorn will, so a busy port is said in one line
    before the app starts: uvicorn binds only after the app's startup, which migrates the
    database and creates the first admin token."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return (
                f"port {port} on {host} is in use by another program: set TASKLENS_PORT "
                "to a free port (or stop that program)"
            )
        return f"cannot listen on {host}:{port} (TASKLENS_HOST, TASKLENS_PORT): {exc.strerror}"
    return None


async def _schema_problem(settings: Settings) -> str | None:
    from tasklens.database_file import DatabaseFileError, claim_postgres
    from tasklens.migrate import SchemaOutOfDate
    from tasklens.runtime import check_schema
    from tasklens.tracking.database import create_engine

    engine = create_engine(settings.database_url, settings.db_schema)
    try:
        await check_schema(engine, settings.db_schema)
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
    from tasklens.tracking.redis_connection import connect

    client = connect(redis_url)
    try:
        await client.ping()
    finally:
        await client.aclose()


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    if settings.embedded:
        print(
            "tasklens: invalid setting TASKLENS_REDIS_URL: a worker needs Redis (in the "
            "embedded mode `tasklens serve` runs the tasks itself)",
            file=sys.stderr,
        )
        return 2
    # Redis unreachable: one line, not taskiq's traceback
    asyncio.run(_ping(settings.distributed_redis_url))
    return run_worker(settings, args.workers, args.shutdown_timeout, args.grace, args.log_level)


def run_worker(
    settings: Settings,
    workers: int,
    shutdown_timeout: float,
    grace: float,
    log_level: str | None,
    broker: str = "tasklens.worker:broker",
) -> int:
    """taskiq's worker command as `tasklens worker` runs it; `broker` differs only for the
    throughput benchmark, which adds its no-op task to the same wiring."""
    from taskiq.cli.worker.cmd import WorkerCMD

    from tasklens.log_setup import configure_logging, taskiq_level

    configure_logging(settings)  # taskiq's forked processes keep it
    command = [
        broker,
        "--workers",
        str(workers),
        "--max-async-tasks",
        str(settings.worker_concurrency),
        "--shutdown-timeout",
        str(shutdown_timeout),
        # SIGTERM: running tasks get this long to finish; the rest are handed back (broker.py).
        "--wait-tasks-timeout",
        str(grace),
        "--ack-type",
        "when_saved",
        "--log-level",
        taskiq_level(settings, log_level),
        "--no-configure-logging",
    ]
    # Run here, not exec'd: signals reach taskiq directly all the same, and its processes
    # (forked from this one) inherit the logging configured above.
    return WorkerCMD().exec(command) or 0


def _scheduler(settings: Settings, _: argparse.Namespace) -> int:
    if settings.embedded or settings.schedules_file is None:
        missing = "REDIS_URL" if settings.embedded else "SCHEDULES_FILE"
        print(
            f"tasklens: invalid setting TASKLENS_{missing}: the scheduler needs Redis and "
            "a schedules file",
            file=sys.stderr,
        )
        return 2
    from taskiq.cli.scheduler.cmd import SchedulerCMD

    from tasklens.log_setup import configure_logging

    asyncio.run(_ping(settings.distributed_redis_url))
    configure_logging(settings)
    SchedulerCMD().exec(
        [
            "tasklens.scheduler:scheduler",
            # edits of the schedules file apply within a second (taskiq's default is a minute)
            "--update-interval",
            "1",
            "--log-level",
            settings.log_level,
            "--no-configure-logging",
        ]
    )
    return 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from tasklens import migrate

    if args.downgrade:
        migrate.downgrade(settings.database_url, args.downgrade, schema=settings.db_schema)
    else:
        migrate.upgrade(settings.database_url, schema=settings.db_schema)
    print(f"tasklens: database {safe_url(settings.database_url)} is at {args.downgrade or 'head'}")
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_demo_async(settings, args.count))


async def _demo_async(settings: Settings, count: int) -> int:
    """Goes through the running server, so it works in the embedded mode too."""
    import httpx

    from tasklens.tokens import Role, TokenRegistry
    from tasklens.tracking.database import create_engine

    url = f"http://{settings.host}:{settings.port}/api/v1/demo"
    engine = create_engine(settings.database_url, settings.db_schema)
    registry = TokenRegistry(engine, [])
    temporary = None
    operators = (entry.token for entry in settings.api_tokens if entry.role is Role.OPERATOR)
    token = next(operators, None)
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
    from tasklens.audit import AuditAction, audited, cli_actor
    from tasklens.tokens import InvalidTokenName, Role, TokenRegistry, check_token_name
    from tasklens.tracking.database import create_engine

    name = args.revoke if args.revoke is not None else args.name
    if name is not None:
        try:
            check_token_name(name)
        except InvalidTokenName as exc:
            print(f"tasklens: invalid token name: {exc}", file=sys.stderr)
            return 2
    if not settings.is_postgres:  # as `serve` does: a fresh SQLite file gets its tables
        migrate.upgrade(settings.database_url, schema=settings.db_schema)

    async def run() -> int:
        engine = create_engine(settings.database_url, settings.db_schema)
        registry = TokenRegistry(engine, settings.api_tokens)
        try:
            if args.list:
                for entry in await registry.list():
                    print(f"{entry.name}\t{entry.role}\t{entry.source}")
                return 0
            actor = cli_actor()
            if args.revoke is not None:
                async with audited(engine, actor, AuditAction.TOKEN_REVOKE, args.revoke) as done:
                    status = await _revoke(registry, args.revoke)
                    done.count = int(status == 0)
                    done.refusal = None if status == 0 else "no stored token of that name"
                return status
            async with audited(engine, actor, AuditAction.TOKEN_CREATE, args.name) as made:
                token = await registry.create(args.name, Role(args.role))
                made.count = int(token is not None)
                made.refusal = None if token else "a token of that name exists already"
                made.detail["role"] = args.role
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
    parser = argparse.ArgumentParser(
        prog="tasklens",
        description=__doc__,
        formatter_class=HelpFormatter,
        epilog="Each command reads its TASKLENS_* settings from the environment or ./.env;\n"
        "`tasklens COMMAND --help` lists them with their defaults.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, reads: Sequence[str] | None) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=summary,
            description=summary,
            formatter_class=HelpFormatter,
            epilog=settings_epilog(reads),
        )

    serve = command("serve", "API + dashboard (embedded mode: runs the tasks too)", None)
    serve.add_argument(
        "--new-database",
        action="store_true",
        help="embedded mode: start an empty database where the SQLite file went missing",
    )
    worker = command("worker", "a TaskIQ worker (distributed mode)", None)
    worker.add_argument("--workers", type=int, default=1, help="worker processes")
    worker.add_argument(
        "--shutdown-timeout",
        type=float,
        default=30.0,
        help="seconds the broker gets to shut down gracefully (taskiq's own option)",
    )
    worker.add_argument(
        "--grace",
        type=float,
        default=30.0,
        help="on SIGTERM, seconds running tasks get to finish before they are handed back",
    )
    worker.add_argument(
        "--log-level",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        default=None,
        help="taskiq's own loggers (default WARNING, or TASKLENS_LOG_LEVEL when DEBUG or "
        "above WARNING); INFO logs a line per task (costs ~25%% throughput)",
    )
    command("scheduler", "taskiq's scheduler for TASKLENS_SCHEDULES_FILE", None)
    migrate = command("migrate", "apply database migrations", ["database_url"])
    migrate.add_argument(
        "--downgrade", metavar="REVISION", help="migrate down to REVISION (e.g. base)"
    )
    demo = command(
        "demo",
        "enqueue demo tasks through the running server",
        ["database_url", "host", "port", "api_tokens"],
    )
    demo.add_argument("--count", type=int, default=50, help="tasks to enqueue")
    token = command(
        "token", "create (printed once), list or revoke API tokens", ["database_url", "api_tokens"]
    )
    action = token.add_mutually_exclusive_group(required=True)
    action.add_argument("--name", help="create a token with this name (1-64 printable chars)")
    action.add_argument("--list", action="store_true", help="name, role and origin of each")
    action.add_argument("--revoke", metavar="NAME", help="delete a stored token")
    token.add_argument(
        "--role", choices=["viewer", "operator"], default="operator", help="the new token's role"
    )
    openapi = command("openapi", "print the API contract (OpenAPI JSON)", [])
    openapi.add_argument("--output", default="-", help="file to write (- for stdout)")
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
