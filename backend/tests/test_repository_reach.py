"""Which hosts a repository analysis may reach: refused addresses in every spelling, names
resolved in the API and again in the worker, and failures that do not tell an open port
from a closed one."""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import Api, Stack, free_port

from tasklens.analyses.periods import Period
from tasklens.analyses.reach import AllowedHosts, HostRefused, refused_rule, resolve_checked
from tasklens.analyses.repository import GitError, InvalidSubject, analyse, parse_subject


@pytest.mark.parametrize(
    ("subject", "rule"),
    [
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://10.0.0.1/team/repo.git", "private"),
        ("https://172.16.3.4/team/repo.git", "private"),
        ("https://192.168.1.10/team/repo.git", "private"),
        ("https://127.0.0.1/team/repo.git", "loopback"),
        ("https://2130706433/team/repo.git", "loopback"),  # decimal
        ("https://0x7f000001/team/repo.git", "loopback"),  # hex
        ("https://0x7f.1/team/repo.git", "loopback"),  # hex, short
        ("https://0177.0.0.1/team/repo.git", "loopback"),  # octal
        ("https://017700000001/team/repo.git", "loopback"),  # octal, whole
        ("https://127.1/team/repo.git", "loopback"),  # short
        ("https://0/team/repo.git", "unspecified"),
        ("https://0.0.0.0/team/repo.git", "unspecified"),
        ("https://100.64.0.1/team/repo.git", "CGNAT"),
        ("https://224.0.0.1/team/repo.git", "multicast"),
        ("https://10.1:8443/team/repo.git", "private"),
        ("ssh://git@127.0.0.1:6379/x", "loopback"),
        ("ssh://127.0.0.1/x", "loopback"),
        ("git@192.168.0.1:team/repo.git", "private"),
        ("git@0x0a000001:team/repo.git", "private"),
    ],
)
def test_refused_addresses_in_every_spelling(subject: str, rule: str) -> None:
    with pytest.raises(InvalidSubject) as refused:
        parse_subject(subject, [])
    assert f"is a {rule} address" in str(refused.value)
    assert "TASKLENS_GIT_ALLOWED_HOSTS" in str(refused.value)


@pytest.mark.parametrize(
    "subject",
    [
        "git@-oProxyCommand:team/repo.git",  # a host ssh would read as an option
        "ssh://user@-oProxyCommand/x",
        "https://%31%32%37.0.0.1/x",  # a percent-encoded host
        "https://github.com:99999/x",
        "https://github.com/x.git --upload-pack=touch",
        "https://github.com/x.git -c core.sshCommand=touch",
        "file::/etc",
    ],
)
def test_options_and_odd_hosts_are_refused(subject: str) -> None:
    with pytest.raises(InvalidSubject):
        parse_subject(subject, [])


def test_allowed_hosts_let_an_internal_server_through() -> None:
    allowed = AllowedHosts.parse(["10.0.0.0/8", "127.0.0.1", "git.corp.example"])
    for subject in (
        "https://10.2.3.4/team/repo.git",
        "ssh://git@127.0.0.1:2222/team/repo.git",
        "https://0x7f.0.0.1/team/repo.git",  # the same address, spelled otherwise
        "git@git.corp.example:team/repo.git",
    ):
        assert parse_subject(subject, [], allowed).url == subject
    with pytest.raises(InvalidSubject, match="is a private address"):
        parse_subject("https://192.168.0.1/team/repo.git", [], allowed)


@pytest.mark.parametrize(
    ("address", "rule"),
    [
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "IPv4-mapped"),
        ("::ffff:8.8.8.8", "IPv4-mapped"),
        ("fe80::1", "link-local"),
        ("fec0::1", "site-local"),  # deprecated, still routed inside some networks
        ("feff::1", "site-local"),
        ("fd00::1", "private"),
        ("ff02::1", "multicast"),
        ("2002:7f00:1::", "loopback (embedded in 2002:7f00:1::)"),  # 6to4 of 127.0.0.1
        ("8.8.8.8", None),
        ("140.82.112.3", None),
        ("2606:4700::1111", None),
    ],
)
def test_address_rules(address: str, rule: str | None) -> None:
    assert refused_rule(ipaddress.ip_address(address)) == rule


async def test_a_name_is_judged_by_what_it_resolves_to() -> None:
    with pytest.raises(HostRefused, match="localhost resolves to a loopback address"):
        await resolve_checked("localhost", 443, AllowedHosts())
    with pytest.raises(HostRefused, match="does not resolve"):
        await resolve_checked("nothing.invalid", 443, AllowedHosts())
    allowed = await resolve_checked("localhost", 443, AllowedHosts.parse(["localhost"]))
    assert ipaddress.ip_address("127.0.0.1") in allowed


@contextmanager
def _listener() -> Iterator[tuple[int, list[Any]]]:
    """An open port that takes connections and closes them at once; counts them."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    accepted: list[Any] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            accepted.append(connection.getpeername())
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], accepted
    finally:
        stop.set()
        thread.join(5)
        server.close()


async def test_the_worker_checks_again_before_it_connects() -> None:
    """The API's check passed long ago, or never ran: the worker resolves the name itself and
    refuses before git connects to anything."""
    with _listener() as (port, accepted):
        source = parse_subject(f"https://localhost:{port}/team/repo.git", [])  # a name: passes
        with pytest.raises(HostRefused, match="localhost resolves to a loopback address"):
            await analyse(source, Period.ALL, lambda *_: None)
    assert accepted == []


@pytest.mark.parametrize("scheme", ["https", "ssh"])
async def test_an_open_and_a_closed_port_fail_alike(scheme: str) -> None:
    allowed = AllowedHosts.parse(["127.0.0.1"])
    closed = free_port()
    with _listener() as (port, accepted):
        errors = []
        for target in (port, closed):
            url = f"{scheme}://git@127.0.0.1:{target}/x.git".replace("https://git@", "https://")
            source = parse_subject(url, [], allowed)
            with pytest.raises(GitError) as failed:
                await analyse(source, Period.ALL, lambda *_: None, allowed_hosts=allowed)
            errors.append(str(failed.value))
    assert accepted  # git did try the open one
    assert errors == ["git clone failed: could not reach the repository"] * 2


def _post(api: Api, subject: str) -> httpx.Response:
    with api.client() as client:
        return client.post("/api/v1/analyses", json={"kind": "repository", "subject": subject})


def test_the_api_refuses_with_a_400_naming_the_rule(embedded: Stack, tmp_path: Path) -> None:
    api = embedded.start_api()
    for subject, says in (
        ("https://169.254.169.254/latest", "169.254.169.254 is a link-local address"),
        ("https://2130706433/team/repo.git", "2130706433 is a loopback address"),
        ("ssh://git@127.0.0.1:6379/x", "127.0.0.1 is a loopback address"),
        ("https://localhost/team/repo.git", "localhost resolves to a loopback address"),
        ("https://nothing.invalid/team/repo.git", "the host nothing.invalid does not resolve"),
    ):
        refused = _post(api, subject)
        assert refused.status_code == 400, subject
        assert refused.json()["error"].startswith(f"invalid subject: {says}"), refused.json()


def test_an_allowed_internal_host_runs_and_its_failure_says_only_could_not_reach(
    distributed: Stack,
) -> None:
    distributed.env["TASKLENS_GIT_ALLOWED_HOSTS"] = "127.0.0.1"
    api = distributed.start_api()
    distributed.start_worker()
    with _listener() as (port, accepted):
        task_ids = [
            _post(api, f"ssh://git@127.0.0.1:{target}/x.git").json()["task_id"]
            for target in (port, free_port())
        ]
        failures = [api.wait_task(task_id, "failed", timeout=90) for task_id in task_ids]
    assert accepted
    messages = {f["attempts"][-1]["error_message"] for f in failures}
    assert messages == {"GitError: git clone failed: could not reach the repository"}


@pytest.mark.parametrize("scheme", ["https", "ssh"])
async def test_git_connects_to_the_address_the_worker_checked(
    scheme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`rebind.test` resolves (to an allowed address) only in this process, as if DNS had
    answered the worker's check: git, whose own resolver knows no such name, still reaches
    the checked address, so a name that resolves differently later changes nothing."""
    real = socket.getaddrinfo

    def resolver(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    allowed = AllowedHosts.parse(["127.0.0.1"])
    with _listener() as (port, accepted):
        url = f"{scheme}://git@rebind.test:{port}/x.git".replace("https://git@", "https://")
        source = parse_subject(url, [], allowed)
        with pytest.raises(GitError, match="could not reach the repository"):
            await analyse(source, Period.ALL, lambda *_: None, allowed_hosts=allowed)
    assert accepted  # the pinned address, not a lookup of its own


async def test_git_decodes_no_other_host_out_of_an_ssh_user_name() -> None:
    """git percent-decodes an ssh:// URL before it splits it: `127.0.0.1:<port>%2F@<allowed>`
    is a user name to TaskLens but the host 127.0.0.1 to git (and an address host is not
    pinned), so the worker connected to a port no rule allowed."""
    allowed = AllowedHosts.parse(["192.0.2.1"])
    with _listener() as (port, accepted):
        for user in (f"127.0.0.1:{port}%2F", f"git%40127.0.0.1:{port}%2F"):
            with pytest.raises(InvalidSubject, match="the URL has characters"):
                source = parse_subject(f"ssh://{user}@192.0.2.1/x.git", [], allowed)
                await analyse(source, Period.ALL, lambda *_: None, allowed_hosts=allowed)
    assert accepted == []
