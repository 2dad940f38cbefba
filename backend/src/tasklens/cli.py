"""`tasklens serve | worker | migrate | demo | token` — one entry point for both run modes."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from tasklens.settings import Settings, load_settings


def _serve(settings: Settings, _: argparse.Namespace) -> int:
    import uvicorn

    from tasklens.api.app import create_app
    from tasklens.api.routes.live import MAX_MESSAGE_BYTES
    from tasklens.api.ws_protocol import LiveWebSocketProtocol
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
    mode = "embedded" if settings.embedded else "distributed"
    print(f"tasklens: {mode} mode, database {_safe_url(settings.database_url)}", flush=True)

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
    from tasklens.migrate import SchemaOutOfDate
    from tasklens.runtime import check_schema

    engine = create_engine(settings.database_url)
    try:
        await check_schema(engine)
    except SchemaOutOfDate as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot reach the database at {_safe_url(settings.database_url)}: {exc}"
    finally:
        await engine.dispose()
    return None


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    if settings.redis_url is None:
        print(
            "tasklens: invalid setting TASKLENS_REDIS_URL: a worker needs Redis (in the "
            "embedded mode `tasklens serve` runs the tasks itself)",
            file=sys.stderr,
        )
        return 2
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
    command = [sys.executable, "-m", "taskiq", "scheduler", "tasklens.scheduler:scheduler"]
    os.execv(sys.executable, command)  # noqa: S606


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from tasklens import migrate

    if args.downgrade:
        migrate.downgrade(settings.database_url, args.downgrade)
    else:
        migrate.upgrade(settings.database_url)
    print(f"tasklens: database {_safe_url(settings.database_url)} is at {args.downgrade or 'head'}")
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_demo_async(settings, args.count))


async def _demo_async(settings: Settings, count: int) -> int:
    """Goes through the running server, so it works in the embedded mode too."""
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
    from tasklens.database import create_engine
    from tasklens.tokens import Role, TokenRegistry

    async def create() -> str | None:
        engine = create_engine(settings.database_url)
        try:
            return await TokenRegistry(engine, []).create(args.name, Role(args.role))
        finally:
            await engine.dispose()

    token = asyncio.run(create())
    if token is None:
        print(f"tasklens: a token named '{args.name}' exists already", file=sys.stderr)
        return 1
    print(token)
    return 0


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


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    if ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tasklens", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="API + dashboard (embedded mode: runs the tasks too)")
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
    token = sub.add_parser("token", help="create an API token (printed once)")
    token.add_argument("--name", required=True)
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = load_settings()
    return COMMANDS[args.command](settings, args)


if __name__ == "__main__":
    raise SystemExit(main())
