"""Keep secrets out of everything TaskLens stores or broadcasts.

Params: a value under a key (or a positional parameter) whose name contains one of the
sensitive words is replaced by `***`. Error messages, tracebacks and results: every value so
redacted from the task's params, and every secret the process was configured with (API
tokens, the GitHub token, database and Redis passwords), is replaced wherever it appears as a
substring (values shorter than `MIN_SECRET_CHARS` are left: replacing `1` or `abc` would
mangle the text and hide nothing), and so are `Bearer …` credentials and URL passwords.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

REDACTED = "***"
SECRET_KEY_PARTS = (
    "token",
    "password",
    "passwd",
    "pwd",
    "secret",
    "key",
    "auth",
    "dsn",
    "cookie",
    "session",
    "credential",
    "private",
    "signature",
)
MAX_DEPTH = 20
# Results are kept whole as deep as JSON goes (json_safe makes deeper ones a preview).
MAX_RESULT_DEPTH = 256
# Shorter values are not searched for in error text and results (see the module docstring).
MIN_SECRET_CHARS = 6

# The shape of a positional value of a task this process cannot see the signature of:
# well-known key prefixes, `Bearer …`, a JWT, a URL with a password, or a long run of
# token characters mixing upper case, lower case and digits (or 32+ hex digits).
_SECRET_PREFIXES = re.compile(
    r"^(?:(?:sk|pk|rk)_(?:live|test)_|gh[pousr]_|github_pat_|xox[abprs]-|AKIA[0-9A-Z]{12}"
    r"|glpat-|(?:bearer|basic|token)\s+\S{6,}|eyJ[\w-]+\.[\w-]+\.)",
    re.IGNORECASE,
)
_TOKEN_RUN = re.compile(r"[A-Za-z0-9_\-+/=~.]{20,}")
_HEX_RUN = re.compile(r"[0-9a-fA-F]{32,}")
# The scheme is bounded: unbounded, every position of a long word (a blob in an error
# message) rescanned the rest of it, quadratic time in the worker's event loop. A longer
# scheme still matches, from further in, with the same replacement.
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]{0,63}://[^/\s:@]*:)[^/\s@]+(?=@)", re.I)
# `Bearer x`, `Basic x`, `Token x` in text, where x has a digit or is long (not "basic use").
# A word that may be a token minted by `tasklens token` (`secrets.token_urlsafe(24)`).
MINTED_TOKEN_CHARS = 32
_TOKEN_WORD = re.compile(rf"[A-Za-z0-9_-]{{{MINTED_TOKEN_CHARS},}}")
_BEARER = re.compile(
    r"(?P<head>\b(?:bearer|basic|token)\s+)"
    r"(?:(?=[A-Za-z._~+/=-]*[0-9])[A-Za-z0-9._~+/=-]{6,}|[A-Za-z0-9._~+/=-]{20,})",
    re.I,
)


# The same well-known key prefixes inside running text (a log line), with what follows them.
_PREFIXED_KEY = re.compile(
    r"\b(?:(?:sk|pk|rk)_(?:live|test)_|gh[pousr]_|github_pat_|xox[abprs]-|glpat-)"
    r"[A-Za-z0-9_\-]{6,}|\bAKIA[0-9A-Z]{16}\b"
)


def scrub_prefixed_keys(text: str) -> str:
    """`sk_live_…`, `ghp_…`, `AKIA…` and the like in `text` replaced by `***`."""
    return _PREFIXED_KEY.sub(REDACTED, text)


def looks_like_secret(value: Any) -> bool:
    """True for a string shaped like a credential (see `_SECRET_PREFIXES` and `_TOKEN_RUN`)."""
    if not isinstance(value, str) or len(value) < 8 or len(value) > 4096:
        return False
    if _SECRET_PREFIXES.match(value) or _URL_PASSWORD.search(value):
        return True
    if _HEX_RUN.fullmatch(value):
        return True
    if not _TOKEN_RUN.fullmatch(value):
        return False
    return (
        any(c.isupper() for c in value)
        and any(c.islower() for c in value)
        and any(c.isdigit() for c in value)
    )


def url_password(url: str | None) -> str | None:
    if not url:
        return None
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


class Redactor:
    """The sensitive key words and the configured secrets of one process."""

    def __init__(self, extra_keys: Iterable[str] = (), secrets: Iterable[str | None] = ()):
        words = dict.fromkeys([*SECRET_KEY_PARTS, *(w.strip().lower() for w in extra_keys)])
        words.pop("", None)
        self.key_words = tuple(words)
        self._is_secret_key = re.compile(
            "|".join(re.escape(word) for word in self.key_words), re.IGNORECASE
        ).search
        self.secrets = _long_enough(secrets)
        self._query = re.compile(
            # Tried only where a run of name characters starts: tried at every position of
            # a long word (a blob in an error message), it rescanned the rest of the word
            # each time, quadratic time in the worker's event loop. Same matches: one that
            # starts inside a run also matches from the run's start.
            r"(?<![\w.-])(?P<name>[\w.-]*(?:"
            + "|".join(re.escape(word) for word in self.key_words)
            + r")[\w.-]*)=(?P<value>[^&\s\"']+)",
            re.IGNORECASE,
        )
        self._json_pair = re.compile(
            r"(?P<head>\"[^\"]*(?:"
            + "|".join(re.escape(word) for word in self.key_words)
            + r")[^\"]*\"\s*:\s*)(?P<value>\"(?:[^\"\\]|\\.)*\"|[^,}\]\s]+)",
            re.IGNORECASE,
        )
        # `'api_key': 'x'` or `"api_key": "x"`: a dict as Python or JSON prints it
        self._quoted_pair = re.compile(
            r"(?P<head>(?P<q>['\"])[^'\"]*(?:"
            + "|".join(re.escape(word) for word in self.key_words)
            + r")[^'\"]*(?P=q)\s*:\s*)(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^,}\]\s]+)",
            re.IGNORECASE,
        )
        # SHA-256 digests of the tokens stored in the database, kept fresh by the middleware
        self.token_digests: frozenset[str] = frozenset()
        # task name -> for each positional parameter, whether its name is sensitive (None:
        # the function is unknown here, or takes its arguments in a way we cannot bind)
        self._positions: dict[str, tuple[bool, ...] | None] = {}

    def is_secret_key(self, key: str) -> bool:
        return self._is_secret_key(key) is not None

    def redact(self, value: Any, _depth: int = 0) -> Any:
        """Copy `value` with every secret-looking key's value replaced; very deep data is
        cut off."""
        if _depth > MAX_DEPTH:
            return "…"
        if isinstance(value, dict):
            secret = self._is_secret_key
            return {
                key: REDACTED if secret(str(key)) else self.redact(item, _depth + 1)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.redact(item, _depth + 1) for item in value]
        return value

    def positions(self, task_name: str, find: Callable[[str], Any]) -> tuple[bool, ...] | None:
        """Which positional parameters of `task_name` are sensitive, from the signature of
        the function `find` returns (a taskiq decorated task), cached per task name."""
        try:
            return self._positions[task_name]
        except KeyError:
            pass
        flags: tuple[bool, ...] | None = None
        task = find(task_name)
        function = getattr(task, "original_func", None)
        if function is not None:
            try:
                parameters = inspect.signature(function).parameters.values()
            except (TypeError, ValueError):
                parameters = None
            if parameters is not None:
                flags = tuple(
                    self.is_secret_key(p.name)
                    for p in parameters
                    if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                )
        if len(self._positions) < 10_000:  # bounded: task names come from messages
            self._positions[task_name] = flags
        return flags

    def params(
        self,
        args: Sequence[Any],
        kwargs: dict[str, Any],
        positions: tuple[bool, ...] | None,
    ) -> dict[str, Any]:
        """A task's params as logged: kwargs by name, positional args under `_args`, each
        redacted by its parameter's name, or by its shape where the name is unknown."""
        params = self.redact(kwargs) if kwargs else {}
        if args:
            named = positions or ()
            params["_args"] = [
                REDACTED
                if (named[i] if i < len(named) else looks_like_secret(value))
                else self.redact(value, 2)  # as deep as under `params["_args"]`
                for i, value in enumerate(args)
            ]
        return params

    def secret_values(
        self, args: Sequence[Any], kwargs: dict[str, Any], positions: tuple[bool, ...] | None
    ) -> list[str]:
        """Every value `params()` redacts from these arguments, as text, plus the process's
        configured secrets: what must not appear in the task's error or result either."""
        found: list[str] = []
        named = positions or ()
        for i, value in enumerate(args):
            if named[i] if i < len(named) else looks_like_secret(value):
                _leaves(value, found, 0)
            else:
                self._secrets_under(value, found, 0)
        self._secrets_under(kwargs, found, 0)
        return _long_enough([*found, *self.secrets]) if found else self.secrets

    def _secrets_under(self, value: Any, found: list[str], depth: int) -> None:
        if depth > MAX_DEPTH:
            return
        if isinstance(value, dict):
            for key, item in value.items():
                if self.is_secret_key(str(key)):
                    _leaves(item, found, depth + 1)
                else:
                    self._secrets_under(item, found, depth + 1)
        elif isinstance(value, list | tuple):
            for item in value:
                self._secrets_under(item, found, depth + 1)

    def scrub_text(self, text: str, secrets: Sequence[str]) -> str:
        """`text` with each of `secrets` (longest first), `Bearer …` credentials, URL
        passwords and `name=value` pairs with a sensitive name replaced by `***`."""
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        if self.token_digests:
            text = _TOKEN_WORD.sub(self._without_stored_tokens, text)
        text = _BEARER.sub(lambda m: m.group("head") + REDACTED, text)
        text = _URL_PASSWORD.sub(lambda m: m.group("head") + REDACTED, text)
        return self._query.sub(lambda m: f"{m.group('name')}={REDACTED}", text)

    def _without_stored_tokens(self, match: re.Match[str]) -> str:
        """A run of token characters with every stored token in it replaced (a token may be
        glued to other such characters: `record-<token>`)."""
        word, size, digests = match.group(0), MINTED_TOKEN_CHARS, self.token_digests
        start = 0
        while start + size <= len(word):
            if hashlib.sha256(word[start : start + size].encode()).hexdigest() in digests:
                word = word[:start] + REDACTED + word[start + size :]
                start += len(REDACTED)
            else:
                start += 1
        return word

    def scrub_result(
        self, value: Any, secrets: Callable[[], Sequence[str]], _depth: int = 0
    ) -> Any:
        """A stored result: dict keys redacted as params' are, and the task's secrets
        (asked of `secrets` only when there is a string to clean) replaced in every string,
        a truncated preview's JSON text included."""
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, str):
            for secret in secrets():
                if secret in value:
                    value = value.replace(secret, REDACTED)
            return value
        if _depth > MAX_RESULT_DEPTH:
            return "…"
        if isinstance(value, dict):
            if value.get("truncated") is True and isinstance(value.get("preview"), str):
                preview = self._json_pair.sub(lambda m: m.group("head") + '"***"', value["preview"])
                return {**value, "preview": self.scrub_result(preview, secrets)}
            is_secret = self._is_secret_key
            return {
                key: REDACTED
                if is_secret(str(key))
                else self.scrub_result(item, secrets, _depth + 1)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.scrub_result(item, secrets, _depth + 1) for item in value]
        return value

    def redact_quoted_pairs(self, text: str) -> str:
        """`{'api_key': 'x'}` in text (a dict printed in a log line) → `{'api_key': '***'}`."""
        return self._quoted_pair.sub(lambda m: f"{m.group('head')}'{REDACTED}'", text)

    def redact_query(self, text: str) -> str:
        return self._query.sub(lambda m: f"{m.group('name')}={REDACTED}", text)


def _leaves(value: Any, found: list[str], depth: int) -> None:
    """Every scalar under `value`, as text."""
    if depth > MAX_DEPTH:
        return
    if isinstance(value, dict):
        for item in value.values():
            _leaves(item, found, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _leaves(item, found, depth + 1)
    elif isinstance(value, str | int | float) and not isinstance(value, bool):
        found.append(str(value))


def _long_enough(values: Iterable[str | None]) -> list[str]:
    """Distinct values of at least MIN_SECRET_CHARS characters, longest first (so a secret
    containing another is replaced whole)."""
    unique = {v for v in values if v and len(v) >= MIN_SECRET_CHARS}
    return sorted(unique, key=len, reverse=True)


DEFAULT = Redactor()


def is_secret_key(key: str) -> bool:
    return DEFAULT.is_secret_key(key)


def redact(value: Any, _depth: int = 0) -> Any:
    """Copy `value` with every secret-looking key's value replaced (the default key words)."""
    return DEFAULT.redact(value, _depth)


class TracebackFilter(logging.Filter):
    """taskiq logs a warning or error with the traceback of every task that raises or whose
    arguments do not parse: its text is scrubbed as the stored traceback is, with the secrets
    `secrets()` names for the task running now. Lower levels pass untouched (and cheaply)."""

    def __init__(self, redactor: Redactor, secrets: Callable[[], Sequence[str]]) -> None:
        super().__init__()
        self.redactor = redactor
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        try:
            secrets = self.secrets()
            record.msg = self.redactor.scrub_text(record.getMessage(), secrets)
            record.args = None
            if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
                text = logging.Formatter().formatException(record.exc_info)
                record.exc_text = self.redactor.scrub_text(text, secrets)
        except Exception:
            record.msg, record.args = (
                "<log line withheld: it could not be cleared of secrets>",
                None,
            )
            record.exc_info = record.exc_text = None
        return True
