"""Two failures are one group when only their ids, numbers, digests and paths differ."""

from __future__ import annotations

import pytest

from tasklens.failures.fingerprint import app_frame, normalise_message, signature, split_error


@pytest.mark.parametrize(
    ("message", "normalised"),
    [
        ("order 1234 not found", "order <n> not found"),
        ("took 12.5s, limit -3", "took <n>s, limit <n>"),
        ("task 3f2b8c1e-9d4a-4f6b-8e2a-1c0d9e8f7a6b lost", "task <uuid> lost"),
        ("task 3f2b8c1e9d4a4f6b8e2a1c0d9e8f7a6b lost", "task <uuid> lost"),
        ("object at 0x7f3a2c1b9d80", "object at <hex>"),
        ("commit deadbeef42 is gone", "commit <hex> is gone"),
        ("no such file: '/tmp/import-8812/Customers.csv'", "no such file: '<path>'"),
        ("a facade of words", "a facade of words"),  # hex letters alone are a word
        ("Error2 in v2 retry", "Error2 in v2 retry"),  # digits inside a word stay
        ("  many   spaces\n and lines ", "many spaces and lines"),
    ],
)
def test_variable_parts_of_a_message_are_replaced(message: str, normalised: str) -> None:
    assert normalise_message(message) == normalised


def test_a_windows_path_is_one_placeholder_up_to_its_first_space() -> None:
    assert normalise_message(r"cannot open C:\data\out.txt now") == "cannot open <path> now"


def test_the_type_is_read_from_type_colon_message_only() -> None:
    assert split_error("ValueError: bad 1") == ("ValueError", "bad 1")
    assert split_error("requests.exceptions.HTTPError: 503") == (
        "requests.exceptions.HTTPError",
        "503",
    )
    assert split_error("KeyError") == ("KeyError", "")
    assert split_error("<unprintable Boom>") == ("Boom", "")
    assert split_error("worker lost") == ("", "worker lost")
    assert split_error("lost: message no longer in the queue") == (
        "",
        "lost: message no longer in the queue",
    )
    assert split_error(None) == ("", "")


TRACEBACK = """Traceback (most recent call last):
  File "/srv/app/.venv/lib/python3.12/site-packages/taskiq/receiver/receiver.py", line 12, in run
    await target()
  File "/srv/app/billing/charges.py", line 88, in charge
    client.post(url)
  File "/srv/app/billing/client.py", line 20, in post
    raise_for(response)
  File "/srv/app/.venv/lib/python3.12/site-packages/httpx/_models.py", line 761, in raise_for
    raise HTTPStatusError(message)
httpx.HTTPStatusError: 503 for url https://pay.example/v1/charges/991
"""


def test_the_frame_is_the_innermost_of_the_apps_own_code_without_its_line() -> None:
    assert app_frame(TRACEBACK) == "billing/client.py:post"
    assert app_frame(TRACEBACK.replace("line 20", "line 27")) == "billing/client.py:post"
    assert app_frame(None) == ""
    only_library = TRACEBACK.replace("/srv/app/billing", "/usr/lib/python3.12/billing")
    assert app_frame(only_library) == ""


def test_a_chained_exception_is_grouped_by_the_last_one_raised() -> None:
    chained = (
        TRACEBACK
        + "\nDuring handling of the above exception, another exception occurred:\n\n"
        + 'Traceback (most recent call last):\n  File "/srv/app/billing/retry.py", line 5, '
        "in again\n    raise RuntimeError\nRuntimeError: gave up\n"
    )
    assert app_frame(chained) == "billing/retry.py:again"


def test_one_fingerprint_per_type_message_template_and_frame() -> None:
    one = signature("KeyError: order 1234", TRACEBACK)
    same = signature("KeyError: order 99", TRACEBACK.replace("/srv/app", "/home/ci/app"))
    assert one == same and one.fingerprint == same.fingerprint
    assert len(one.fingerprint) == 16 and int(one.fingerprint, 16) >= 0
    other_type = signature("ValueError: order 1234", TRACEBACK)
    other_text = signature("KeyError: customer 1234", TRACEBACK)
    other_frame = signature("KeyError: order 1234", TRACEBACK.replace("in post", "in put"))
    fingerprints = {s.fingerprint for s in (one, other_type, other_text, other_frame)}
    assert len(fingerprints) == 4
