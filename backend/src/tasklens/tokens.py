"""API tokens: who may call TaskLens, and with which role.

Tokens come from `TASKLENS_API_TOKENS` or from the `api_tokens` table, where only their
SHA-256 digest is kept. Lookups compare digests in constant time. A stored token found
valid is remembered for STORED_CACHE_SECONDS, so a revoked one is refused by every API
process that long after at the latest.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from tasklens.tracking.models import ApiToken


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role

    @property
    def can_operate(self) -> bool:
        return self.role is Role.OPERATOR


MAX_NAME_LENGTH = 64  # the api_tokens.name column


class InvalidTokenName(ValueError):
    pass


def check_token_name(name: str) -> str:
    """1-64 printable characters, on every backend (SQLite would store anything)."""
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise InvalidTokenName(f"needs 1-{MAX_NAME_LENGTH} characters, got {len(name)}")
    if not name.isprintable():
        raise InvalidTokenName("control characters are not allowed")
    return name


@dataclass(frozen=True, slots=True)
class TokenListing:
    name: str
    role: Role
    source: str  # "stored" (revocable) or "configured" (TASKLENS_API_TOKENS)


@dataclass(frozen=True, slots=True)
class TokenEntry:
    name: str
    role: Role
    digest: str


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True, slots=True)
class ConfiguredToken:
    """One entry of TASKLENS_API_TOKENS, parsed once when the settings are read."""

    name: str
    role: Role
    token: str = field(repr=False)


MIN_CONFIGURED_TOKEN_CHARS = 16


def parse_token_entry(raw: str, index: int) -> ConfiguredToken:
    """`token`, `name:token` or `name:role:token`, the `index`th entry (from 0) of
    TASKLENS_API_TOKENS; a ValueError says which entry is wrong and how."""
    parts = raw.split(":")
    try:
        if len(parts) == 1:
            entry = ConfiguredToken(f"token-{index + 1}", Role.OPERATOR, parts[0])
        elif len(parts) == 2:
            entry = ConfiguredToken(parts[0], Role.OPERATOR, parts[1])
        elif len(parts) == 3:
            entry = ConfiguredToken(parts[0], Role(parts[1]), parts[2])
        else:
            raise ValueError(len(parts))
    except ValueError:
        raise ValueError(
            f"entry {index + 1}: use `token`, `name:token` or `name:role:token` "
            "with role viewer or operator"
        ) from None
    try:
        check_token_name(entry.name)
    except InvalidTokenName as exc:
        raise ValueError(f"entry {index + 1}: name {exc}") from None
    if len(entry.token) < MIN_CONFIGURED_TOKEN_CHARS:
        raise ValueError(
            f"entry {index + 1}: a token needs at least {MIN_CONFIGURED_TOKEN_CHARS} characters"
        )
    return entry


async def stored_digests(engine: AsyncEngine) -> set[str]:
    """The digests of every token in the table (for redaction.py: a worker never sees the
    tokens themselves, only text that may hold one)."""
    async with engine.connect() as conn:
        query: sa.Select[Any] = sa.select(sa.column("token_sha256")).select_from(ApiToken)
        result: sa.Result[Any] = await conn.execute(query)
        return {str(row[0]) for row in result.all()}


class TokenRegistry:
    STORED_CACHE_SECONDS = 2.0

    def __init__(self, engine: AsyncEngine, configured: Sequence[ConfiguredToken]) -> None:
        self._engine = engine
        self._known: list[TokenEntry] = []
        # Digests found in the table: a stored token costs a query every 2 s, not a request.
        self._stored: dict[str, tuple[float, TokenEntry]] = {}
        for entry in configured:
            self._known.append(TokenEntry(entry.name, entry.role, digest(entry.token)))

    @property
    def has_configured_tokens(self) -> bool:
        return bool(self._known)

    async def authenticate(self, token: str | None) -> Principal | None:
        if not token:
            return None
        return self.known(token) or await self.lookup(token)

    def known(self, token: str) -> Principal | None:
        """A configured token, or a stored one looked up in the last minute: no I/O."""
        wanted = digest(token)
        found: TokenEntry | None = None
        for entry in self._known:  # no early exit: every entry costs the same
            if hmac.compare_digest(entry.digest, wanted):
                found = entry
        if found is None:
            cached = self._stored.get(wanted)
            if cached is not None and time.monotonic() - cached[0] < self.STORED_CACHE_SECONDS:
                found = cached[1]
        return None if found is None else Principal(found.name, found.role)

    async def lookup(self, token: str) -> Principal | None:
        """A stored token, from the table (then cached)."""
        wanted = digest(token)
        found = await self._lookup(wanted)
        if found is None:
            return None
        self._stored[wanted] = (time.monotonic(), found)
        return Principal(found.name, found.role)

    async def _lookup(self, wanted: str) -> TokenEntry | None:
        async with AsyncSession(self._engine) as session:
            row = (
                await session.exec(select(ApiToken).where(ApiToken.token_sha256 == wanted))
            ).first()
        if row is None or not hmac.compare_digest(row.token_sha256, wanted):
            return None
        return TokenEntry(row.name, Role(row.role), row.token_sha256)

    async def create(self, name: str, role: Role) -> str | None:
        """Store a new token's digest; None if `name` exists (another process was first)."""
        check_token_name(name)
        token = new_token()
        async with AsyncSession(self._engine) as session:
            if await session.get(ApiToken, name) is not None:
                return None
            session.add(ApiToken(name=name, role=role.value, token_sha256=digest(token)))
            try:
                await session.commit()
            except sa.exc.IntegrityError:
                return None
        return token

    def is_configured(self, name: str) -> bool:
        return any(entry.name == name for entry in self._known)

    async def list(self) -> list[TokenListing]:
        """Configured tokens, then stored ones by name: never a token or its digest."""
        async with AsyncSession(self._engine) as session:
            rows = (await session.exec(select(ApiToken).order_by(sa.column("name")))).all()
        return [TokenListing(e.name, e.role, "configured") for e in self._known] + [
            TokenListing(row.name, Role(row.role), "stored") for row in rows
        ]

    async def revoke(self, name: str) -> bool:
        """Delete a stored token; False if no stored token has that name."""
        self._stored = {d: e for d, e in self._stored.items() if e[1].name != name}
        async with self._engine.begin() as conn:
            result = await conn.execute(sa.delete(ApiToken).where(sa.column("name") == name))
        return bool(result.rowcount)

    async def delete(self, name: str) -> None:
        self._stored = {d: e for d, e in self._stored.items() if e[1].name != name}
        async with self._engine.begin() as conn:
            await conn.execute(sa.delete(ApiToken).where(sa.column("name") == name))

    async def stored_count(self) -> int:
        async with self._engine.connect() as conn:
            count = await conn.scalar(sa.select(sa.func.count()).select_from(ApiToken))
        return int(count or 0)

    async def first_start_token(self) -> str | None:
        """Jupyter-style: with no configured and no stored tokens, make an `admin` one."""
        if self.has_configured_tokens or await self.stored_count() > 0:
            return None
        return await self.create("admin", Role.OPERATOR)
