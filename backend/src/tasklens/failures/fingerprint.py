"""What makes two failures "the same": exception type, message with its variable parts
replaced, and the innermost frame of the app's own code.

A message's ids, numbers, hex digests and paths change from one failure to the next
(`order 1234 not found`, `order 1235 not found`), so they are replaced by placeholders
before hashing; line numbers are left out of the frame (an edit above it would split the
group). Pure functions: the grouping reads rows and calls these.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

# The last this many characters of a traceback hold its innermost frames (the log keeps a
# traceback's end when it cuts one short): grouping reads only these.
TRACEBACK_TAIL_CHARS = 4000
MESSAGE_CHARS = 300

_UUID = re.compile(
    r"\b[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\b"
)
_PATH = re.compile(r"(?:[A-Za-z]:\\|~?/)[^\s'\":,;()\[\]{}<>]*[^\s'\":,;()\[\]{}<>.]")
_HEX = re.compile(
    r"\b0[xX][0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{6,}\b"
)
_NUMBER = re.compile(r"(?<![A-Za-z_])[-+]?\d+(?:[.,]\d+)*")
_SPACE = re.compile(r"\s+")
# `Type: message`, as the middleware writes it: a dotted name, or one that starts upper-case
# (so "lost: message no longer in the queue" is a message, not a type).
_TYPED = re.compile(r"^(?P<type>[A-Z]\w*(?:\.\w+)*|[a-z_]\w*(?:\.\w+)+)(?::\s*(?P<msg>.*))?$", re.S)
_UNPRINTABLE = re.compile(r"^<unprintable (?P<type>[\w.]+)>$")
_FRAME = re.compile(r'File "(?P<path>[^"]+)", line \d+, in (?P<func>\S+)')
_LIBRARY = ("site-packages", "dist-packages", "/lib/python", "\\lib\\", "<frozen ", "<string>")
_CHAINED_MARKERS = (
    "\nDuring handling of the above exception",
    "\nThe above exception was the direct cause",
)


def normalise_message(message: str) -> str:
    """`message` with uuids, paths, hex and numbers as `<uuid>`, `<path>`, `<hex>`, `<n>`."""
    text = _UUID.sub("<uuid>", message)
    text = _PATH.sub("<path>", text)
    text = _HEX.sub("<hex>", text)
    text = _NUMBER.sub("<n>", text)
    return _SPACE.sub(" ", text).strip()[:MESSAGE_CHARS]


def split_error(error_message: str | None) -> tuple[str, str]:
    """(exception type, message) of a log row's `error_message`; the type is "" when the
    text is not `Type: message` (the reaper's "worker lost", say)."""
    text = (error_message or "").strip()
    if unprintable := _UNPRINTABLE.match(text):
        return unprintable["type"], ""
    if typed := _TYPED.match(text):
        return typed["type"], typed["msg"] or ""
    return "", text


def app_frame(traceback: str | None) -> str:
    """The innermost frame of the app's own code in the final exception's traceback, as
    `parent/file.py:function` (no line number, no install prefix); "" when there is none.
    Read from the end, frame by frame (`rfind`, not a regex over the whole text): grouping
    calls this for every failed row of the window."""
    if not traceback:
        return ""
    floor = max(traceback.rfind(marker) for marker in _CHAINED_MARKERS)
    end = len(traceback)
    while (at := traceback.rfind('File "', max(floor, 0), end)) >= 0:
        end = at
        line_end = traceback.find("\n", at)
        frame = _FRAME.match(traceback, at, line_end if line_end >= 0 else len(traceback))
        if frame is not None and not _is_library(frame["path"]):
            parts = re.split(r"[/\\]", frame["path"])
            return f"{'/'.join(parts[-2:])}:{frame['func']}"
    return ""


def _is_library(path: str) -> bool:
    return any(marker in path for marker in _LIBRARY)


@dataclass(frozen=True, slots=True)
class Signature:
    exception_type: str
    message: str  # normalised
    frame: str

    @property
    def fingerprint(self) -> str:
        """16 hex characters, stable across processes and releases of TaskLens."""
        key = "\0".join((self.exception_type, self.message, self.frame))
        return hashlib.sha256(key.encode()).hexdigest()[:16]


def signature(error_message: str | None, traceback: str | None) -> Signature:
    kind, message = split_error(error_message)
    return Signature(kind, normalise_message(message), app_frame(traceback))


FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")
