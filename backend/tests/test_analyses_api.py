"""Analyses through the API, as a user runs them: trigger, deduplicate, cache, regenerate,
against real API and worker processes."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from conftest import STACKS
from git_repo import make_repository
from github_replay import replay_server
from support import OPERATOR_TOKEN, VIEWER_TOKEN, Api, LiveEvents, Stack, wait_for


def _post(api: Api, token: str = OPERATOR_TOKEN, **body: Any) -> httpx.Response:
    with api.client(token) as client:
        return client.post("/api/v1/analyses", json=body)


def _get(
    api: Api, kind: str, subject: str, token: str = OPERATOR_TOKEN, **params: Any
) -> httpx.Response:
    with api.client(token) as client:
        return client.get(f"/api/v1/analyses/{kind}/{quote(subject, safe='')}", params=params)


def _repo_stack(stack: Stack, tmp_path: Path) -> Path:
    repo = make_repository(tmp_path / "repos" / "project")
    stack.env["TASKLENS_REPO_ROOTS"] = str(tmp_path / "repos")
    return repo


async def test_an_analysis_runs_reports_progress_and_is_cached(
    distributed: Stack, tmp_path: Path
) -> None:
    repo = _repo_stack(distributed, tmp_path)
    api = distributed.start_api()
    distributed.start_worker()

    async with LiveEvents(api.ws_url()) as live:
        accepted = _post(api, kind="repository", subject=str(repo), params={"period": "1_year"})
        assert accepted.status_code == 202
        body = accepted.json()
        assert (body["status"], body["deduplicated"], body["cached"]) == ("pending", False, False)
        await live.wait_status(body["task_id"], "success", timeout=60)

    notes = [
        f["data"]["progress_message"]
        for f in live.frames
        if f.get("type") == "task_event" and f["data"]["progress_message"]
    ]
    assert notes[:5] == [
        "cloning",
        "reading history",
        "counting lines of code",
        "detecting technologies",
        "reading plan files",
    ]
    wait_for(
        lambda: _get(api, "repository", str(repo), period="1_year").status_code == 200,
        timeout=10,
        what="the cached result",
    )
    cached = _get(api, "repository", str(repo), period="1_year").json()
    assert cached["result"]["commit_count"] == 5
    assert cached["result"]["plan_progress"]["percentage"] == 45.5
    assert (cached["is_stale"], cached["is_regenerating"]) == (False, False)
    assert cached["task_id"] == body["task_id"] and cached["cache_age_seconds"] >= 0

    again = _post(api, kind="repository", subject=str(repo), params={"period": "1_year"})
    assert again.status_code == 200
    assert again.json() == {
        "task_id": body["task_id"],
        "status": "success",
        "deduplicated": False,
        "cached": True,
    }

    with api.client() as client:
        listed = client.get("/api/v1/analyses").json()["items"]
    assert [(i["kind"], i["subject"], i["period"], i["task_id"]) for i in listed] == [
        ("repository", str(repo), "1_year", body["task_id"])
    ]


async def test_100_identical_requests_to_two_api_processes_run_once(
    distributed: Stack, tmp_path: Path
) -> None:
    repo = _repo_stack(distributed, tmp_path)
    apis = [distributed.start_api("api-a"), distributed.start_api("api-b")]
    payload = {"kind": "repository", "subject": str(repo), "params": {"period": "all"}}

    async with httpx.AsyncClient(
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}, timeout=30
    ) as client:
        responses = await asyncio.gather(
            *(
                client.post(apis[i % 2].base_url + "/api/v1/analyses", json=payload)
                for i in range(100)
            )
        )

    assert [r.status_code for r in responses] == [202] * 100
    task_ids = {r.json()["task_id"] for r in responses}
    assert len(task_ids) == 1
    assert sum(not r.json()["deduplicated"] for r in responses) == 1
    distributed.start_worker()  # only now: every request was answered while it was queued
    [task_id] = task_ids
    apis[0].wait_task(task_id, "success", timeout=60)
    with apis[0].client() as client:
        runs = client.get(
            "/api/v1/monitoring/history", params={"task_name": "analysis.repository"}
        ).json()
    assert runs["total_count"] == 1


async def test_requests_to_two_api_processes_across_the_runs_finish_run_it_once(
    distributed: Stack, tmp_path: Path
) -> None:
    """Requests keep coming while the run is queued, runs, saves and frees its claim: every
    one answers the one task id (202) or its cached result (200), and it runs once."""
    repo = _repo_stack(distributed, tmp_path)
    apis = [distributed.start_api("api-a"), distributed.start_api("api-b")]
    payload = {"kind": "repository", "subject": str(repo), "params": {"period": "all"}}
    distributed.start_worker()
    answers: list[httpx.Response] = []
    async with httpx.AsyncClient(
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}, timeout=30
    ) as client:
        cached_at: list[float] = []

        async def keep_asking(i: int) -> None:
            """Requests back to back, until a second after the first cached answer."""
            deadline = time.monotonic() + 90
            while not cached_at or time.monotonic() < cached_at[0] + 1:
                assert time.monotonic() < deadline, "the analysis never finished"
                answer = await client.post(apis[i % 2].base_url + "/api/v1/analyses", json=payload)
                answers.append(answer)
                if answer.status_code == 200 and not cached_at:
                    cached_at.append(time.monotonic())

        await asyncio.gather(*(keep_asking(i) for i in range(20)))

    assert {r.status_code for r in answers} <= {200, 202}, [r.text for r in answers]
    task_ids = {r.json()["task_id"] for r in answers}
    assert len(task_ids) == 1, task_ids
    started = [r for r in answers if not r.json()["deduplicated"] and not r.json()["cached"]]
    assert len(started) == 1
    [task_id] = task_ids
    apis[0].wait_task(task_id, "success", timeout=60)
    time.sleep(1)  # a second run's pending row, if any, reaches the log
    with apis[0].client() as api_client:
        runs = api_client.get(
            "/api/v1/monitoring/history", params={"task_name": "analysis.repository"}
        ).json()
    assert runs["total_count"] == 1, runs


async def test_stale_results_are_regenerated_for_operators_only(
    distributed: Stack, tmp_path: Path
) -> None:
    repo = _repo_stack(distributed, tmp_path)
    distributed.env["TASKLENS_REPORT_STALE_AFTER_SECONDS"] = "2"
    api = distributed.start_api()
    distributed.start_worker()

    assert _get(api, "repository", str(repo), token=VIEWER_TOKEN).json() == {
        "error": f"no repository analysis of '{repo}' yet; an operator can run it"
    }
    assert _post(api, VIEWER_TOKEN, kind="repository", subject=str(repo)).status_code == 403
    first = _get(api, "repository", str(repo))  # operator: missing → generated
    assert first.status_code == 202 and first.json()["is_regenerating"] is True
    api.wait_task(first.json()["task_id"], "success", timeout=60)
    wait_for(
        lambda: _get(api, "repository", str(repo)).status_code == 200,
        timeout=10,
        what="the first result",
    )
    time.sleep(2.5)  # now stale

    seen_by_viewer = _get(api, "repository", str(repo), token=VIEWER_TOKEN).json()
    assert (seen_by_viewer["is_stale"], seen_by_viewer["is_regenerating"]) == (True, False)
    stale = _get(api, "repository", str(repo)).json()
    assert (stale["is_stale"], stale["is_regenerating"]) == (True, True)
    assert stale["result"]["commit_count"] == 6  # the stale result is still served
    assert stale["task_id"] != first.json()["task_id"]
    api.wait_task(stale["task_id"], "success", timeout=60)
    fresh = _get(api, "repository", str(repo)).json()
    assert (fresh["is_stale"], fresh["task_id"]) == (False, stale["task_id"])


async def test_a_failed_regeneration_keeps_the_old_result(
    distributed: Stack, tmp_path: Path
) -> None:
    repo = _repo_stack(distributed, tmp_path)
    distributed.env["TASKLENS_REPORT_STALE_AFTER_SECONDS"] = "1"
    api = distributed.start_api()
    distributed.start_worker()
    first = _post(api, kind="repository", subject=str(repo)).json()
    api.wait_task(first["task_id"], "success", timeout=60)
    time.sleep(1.5)
    shutil.rmtree(repo / ".git" / "objects")  # the repository is broken: cloning fails

    stale = _get(api, "repository", str(repo)).json()
    failed = api.wait_task(stale["task_id"], "failed", timeout=60)
    assert "git clone failed" in failed["attempts"][0]["error_message"]
    after = _get(api, "repository", str(repo)).json()
    assert after["result"]["commit_count"] == 6
    assert after["is_stale"] is True

    shutil.rmtree(repo)  # gone for good: a retry is refused, clearly, not a 500
    with api.client() as client:
        retried = client.post(f"/api/v1/tasks/{stale['task_id']}/retry")
    assert retried.status_code == 400
    assert retried.json()["error"] == f"invalid subject: {repo} is not a git repository"


async def test_a_failed_analysis_left_open_starts_nothing_new_until_retried(
    distributed: Stack, tmp_path: Path
) -> None:
    """The page polls GET while it is open: a failed run is shown, not started again."""
    repo = _repo_stack(distributed, tmp_path)
    shutil.rmtree(repo / ".git" / "objects")  # cloning fails, every time
    distributed.env["TASKLENS_REPORT_STALE_AFTER_SECONDS"] = "8"
    api = distributed.start_api()
    distributed.start_worker()

    def runs() -> list[str]:
        with api.client() as client:
            history = client.get(
                "/api/v1/monitoring/history", params={"task_name": "analysis.repository"}
            ).json()
        return sorted({item["task_id"] for item in history["items"]})

    opened = _get(api, "repository", str(repo))  # an operator opens the page: it runs
    assert opened.status_code == 202
    first = opened.json()["task_id"]
    api.wait_task(first, "failed", timeout=60)

    for _ in range(10):  # the page left open, polling
        seen = _get(api, "repository", str(repo))
        assert seen.status_code == 200, seen.text
        view = seen.json()
        assert (view["result"], view["is_regenerating"], view["failed_task_id"]) == (
            None,
            False,
            first,
        )
        assert view["attempts_allowed"] == 4  # 1 + the default TASKLENS_MAX_RETRIES
        time.sleep(0.3)
    assert runs() == [first]

    with api.client() as client:  # the user clicks Retry: one new run
        retried = client.post(f"/api/v1/tasks/{first}/retry").json()["task_id"]
    api.wait_task(retried, "failed", timeout=60)
    failed_at = time.monotonic()
    assert _get(api, "repository", str(repo)).json()["failed_task_id"] == retried
    assert runs() == sorted([first, retried])
    viewer_view = _get(api, "repository", str(repo), token=VIEWER_TOKEN).json()
    assert viewer_view["failed_task_id"] == retried  # a viewer sees why there is no report

    time.sleep(max(0.0, failed_at + 8.5 - time.monotonic()))  # the stale interval passes
    again = _get(api, "repository", str(repo)).json()
    assert again["is_regenerating"] is True and again["failed_task_id"] is None
    assert len(runs()) == 3


def test_a_queued_analysis_cancelled_before_it_ran_does_not_hold_its_subject(
    distributed: Stack, tmp_path: Path
) -> None:
    """No worker yet: the analysis waits in the queue. Cancelled there, it never runs, so it
    cannot free its claim itself; a request after the cancel must start a new run, not join
    the cancelled one, and the page shows the cancel rather than starting it again."""
    repo = _repo_stack(distributed, tmp_path)
    api = distributed.start_api()
    first = _post(api, kind="repository", subject=str(repo)).json()
    assert first["status"] == "pending"
    with api.client() as client:
        cancelled = client.post(f"/api/v1/tasks/{first['task_id']}/cancel").json()
    assert cancelled["status"] == "cancelled"

    view = _get(api, "repository", str(repo)).json()
    assert (view["is_regenerating"], view["failed_task_id"]) == (False, first["task_id"])
    again = _post(api, kind="repository", subject=str(repo))
    assert again.status_code == 202, again.text
    assert again.json()["deduplicated"] is False
    assert again.json()["task_id"] != first["task_id"]

    distributed.start_worker()  # the new run completes; the cancelled one never starts
    api.wait_task(again.json()["task_id"], "success", timeout=60)
    assert api.task(first["task_id"])["status"] == "cancelled"
    assert [a["status"] for a in api.task(first["task_id"])["attempts"]] == ["cancelled"]


def test_bad_requests_are_400s_naming_the_field(embedded: Stack) -> None:
    api = embedded.start_api()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"kind": "repository", "subject": "file:///etc"}, "invalid subject: the file://"),
        ({"kind": "repository", "subject": "/etc"}, "invalid subject: local paths must be"),
        ({"kind": "github_user", "subject": "-bad-"}, "invalid subject: a GitHub login"),
        ({"kind": "mainframe", "subject": "x"}, "invalid kind:"),
        ({"kind": "repository", "subject": ""}, "invalid subject:"),
        (
            {"kind": "github_user", "subject": "octo", "params": {"period": "2_days"}},
            "invalid params.period:",
        ),
    ]
    for body, says in cases:
        response = _post(api, **body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"].startswith(says), response.json()


async def test_an_unknown_github_user_fails_clearly_and_the_token_stays_secret(
    distributed: Stack,
) -> None:
    token = "ghp_workersecret0123456789"
    with replay_server("github_octo_dev.json") as github:
        distributed.env["TASKLENS_GITHUB_API_URL"] = github.base_url
        distributed.env["TASKLENS_GITHUB_TOKEN"] = token
        api = distributed.start_api()
        worker = distributed.start_worker()
        accepted = _post(api, kind="github_user", subject="ghost-nobody").json()
        task = api.wait_task(accepted["task_id"], "failed")

    assert task["attempts"][0]["error_message"] == (
        "UnknownUser: GitHub user 'ghost-nobody' does not exist"
    )
    assert task["params"] == {"subject": "ghost-nobody", "period": "1_year"}
    assert github.requests[0]["headers"]["Authorization"] == f"Bearer {token}"
    assert token not in str(task) and token not in worker.log() + api.process.log()


@pytest.mark.parametrize("mode", ["embedded", "distributed"])
def test_forced_refreshes_are_rate_limited_per_token_and_recorded(
    mode: str, tmp_path: Path
) -> None:
    stack = STACKS[mode](tmp_path)
    repo = _repo_stack(stack, tmp_path)
    stack.env["TASKLENS_REFRESH_RATE_LIMIT"] = "5/300"
    try:
        api = stack.start_api()
        if mode == "distributed":
            stack.start_worker()
        refreshes_url = f"/api/v1/analyses/repository/{quote(str(repo), safe='')}/refreshes"

        def left(token: str) -> tuple[int, int, int]:
            with api.client(token) as client:
                body = client.get(refreshes_url).json()
            return body["refreshes_left"], body["refresh_limit"], body["refresh_window_seconds"]

        assert left(OPERATOR_TOKEN) == (5, 5, 300)
        task_ids = []
        for done in range(1, 6):
            forced = _post(api, kind="repository", subject=str(repo), force=True)
            assert forced.status_code == 202, forced.text
            task_ids.append(forced.json()["task_id"])
            api.wait_task(task_ids[-1], "success", timeout=60)  # runs even though fresh
            assert left(OPERATOR_TOKEN) == (5 - done, 5, 300)

        limited = _post(api, kind="repository", subject=str(repo), force=True)
        assert limited.status_code == 429
        assert 295 <= int(limited.headers["Retry-After"]) <= 300
        assert limited.json()["error"].startswith("refresh limit reached (5 per 300 s)")
        assert _post(api, kind="repository", subject=str(repo)).json()["cached"] is True

        with api.client(VIEWER_TOKEN) as client:
            history = client.get(
                f"/api/v1/analyses/repository/{quote(str(repo), safe='')}/refreshes"
            ).json()
        assert "refreshes" in history, history
        refreshes = history["refreshes"]
        assert [r["task_id"] for r in refreshes] == task_ids[::-1]  # newest first
        assert {(r["requested_by"], r["outcome"]) for r in refreshes} == {("ops", "success")}
        assert all(r["duration_ms"] > 0 for r in refreshes)
        assert history["refreshes_left"] == 5  # the viewer's token made none
    finally:
        stack.stop_all()


def test_a_quick_analysis_runs_within_the_request(distributed: Stack, tmp_path: Path) -> None:
    repo = _repo_stack(distributed, tmp_path)
    api = distributed.start_api()
    body = {"kind": "repository", "subject": str(repo), "params": {"period": "all"}}
    with api.client() as client:
        waited = client.post("/api/v1/analyses/sync", params={"timeout": 1}, json=body)
        assert waited.status_code == 504  # no worker yet: still queued after 1 s
        task_id = waited.json()["task_id"]
        assert waited.json()["error"] == (
            f"still running after 1 s; poll GET /api/v1/tasks/{task_id}"
        )

        distributed.start_worker()
        done = client.post("/api/v1/analyses/sync", params={"timeout": 60}, json=body)
        assert done.status_code == 200
        assert done.json()["task_id"] == task_id  # joined the queued run
        assert done.json()["result"]["commit_count"] == 6

        cached = client.post("/api/v1/analyses/sync", json=body).json()
        assert (cached["cached"], cached["status"]) == (True, "success")
        assert (
            client.post("/api/v1/analyses/sync", params={"timeout": 121}, json=body).status_code
            == 400
        )


async def test_transient_failures_retry_with_backoff_and_rate_limits_wait_for_the_reset(
    distributed: Stack,
) -> None:
    with replay_server("github_octo_dev.json") as github:
        distributed.env["TASKLENS_GITHUB_API_URL"] = github.base_url
        api = distributed.start_api()
        distributed.start_worker()
        flaky = _post(api, kind="github_user", subject="blip-dev").json()["task_id"]
        limited = _post(api, kind="github_user", subject="wait-dev").json()["task_id"]
        waiting: dict[str, Any] = {}  # the task while its second attempt waits out its delay
        wait_for(
            lambda: bool(waiting.update(api.task(flaky)) or waiting.get("retry_at")),
            timeout=60,
            what=f"a retry_at on {flaky}",
            interval=0.05,
        )
        flaky_task = api.wait_task(flaky, "success", timeout=60)
        limited_task = api.wait_task(limited, "success", timeout=60)

    first, second = flaky_task["attempts"]
    assert first["status"] == "failed"
    assert first["error_message"] == "TransientGitHubError: GitHub answered 502"
    assert second["status"] == "success"
    assert _seconds_between(first["completed_at"], second["started_at"]) >= 1.0  # backoff
    # While it waited, the task said when the next attempt starts, and it started then.
    assert [a["status"] for a in waiting["attempts"]] == ["failed", "pending"]
    assert waiting["retry_at"] == second["run_at"]
    assert _seconds_between(first["completed_at"], waiting["retry_at"]) >= 1.0
    # Not before it was due; soon after (a worker moves due messages in and reads them).
    assert -0.5 < _seconds_between(waiting["retry_at"], second["started_at"]) < 3.0
    assert flaky_task["result"]["profile"]["login"] == "blip-dev"

    waited, ran = limited_task["attempts"]
    assert waited["error_message"].startswith("RateLimited: GitHub rate limit reached")
    assert _seconds_between(waited["completed_at"], ran["started_at"]) >= 2.0  # Retry-After
    assert ran["status"] == "success"


def _seconds_between(earlier: str, later: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


async def test_analyses_of_one_subject_never_overlap_while_other_subjects_run(
    distributed: Stack, tmp_path: Path
) -> None:
    repo = _repo_stack(distributed, tmp_path)
    other = make_repository(tmp_path / "repos" / "other")
    api = distributed.start_api()  # TASKLENS_MAX_SUBJECT_CONCURRENT_TASKS defaults to 1
    same = [
        _post(api, kind="repository", subject=str(repo), params={"period": p}).json()
        for p in ("all", "1_year", "3_months", "1_month")
    ]
    elsewhere = _post(api, kind="repository", subject=str(other)).json()
    assert len({s["task_id"] for s in same}) == 4  # different params: four analyses
    distributed.start_worker()

    runs = [api.wait_task(s["task_id"], "success", timeout=90) for s in same]
    other_run = api.wait_task(elsewhere["task_id"], "success", timeout=90)
    spans = sorted((r["started_at"], r["completed_at"]) for r in runs)
    for (_, ended), (started, _) in itertools.pairwise(spans):
        assert ended <= started, spans  # one after another, never overlapping
    assert other_run["started_at"] < spans[-1][0]  # the other subject did not queue behind
    assert all(len(r["attempts"]) == 1 for r in runs)  # waiting is not a failed attempt


async def test_scheduled_refreshes_run_at_low_priority(distributed: Stack, tmp_path: Path) -> None:
    repo = _repo_stack(distributed, tmp_path)
    schedules = tmp_path / "schedules.json"
    schedules.write_text(
        json.dumps(
            {
                "schedules": [
                    {
                        "kind": "repository",
                        "subject": str(repo),
                        "period": "1_year",
                        "interval_seconds": 2,
                    }
                ]
            }
        )
    )
    distributed.env["TASKLENS_SCHEDULES_FILE"] = str(schedules)
    api = distributed.start_api()
    distributed.start_worker()
    distributed._spawn("scheduler", ["scheduler"], {})

    wait_for(
        lambda: (
            _get(api, "repository", str(repo), token=VIEWER_TOKEN, period="1_year").status_code
            == 200
        ),
        timeout=30,
        what="a scheduled run's result",
    )
    cached = _get(api, "repository", str(repo), token=VIEWER_TOKEN, period="1_year").json()
    assert cached["result"]["commit_count"] == 5
    run = api.task(cached["task_id"])
    assert run["queue"] == "tasklens:low"
    with api.client() as client:
        fired = client.get(
            "/api/v1/monitoring/history", params={"task_name": "analysis.scheduled_refresh"}
        ).json()
    assert fired["total_count"] >= 1
