# TaskLens recipes. `./dev <recipe>` installs just/uv when missing and runs these; `./dev up`
# and `./dev tasklens …` run their final command itself (see dev) so that Ctrl-C is a clean stop.

set shell := ["bash", "-euo", "pipefail", "-c"]
set dotenv-load := false

export UV_COMPILE_BYTECODE := "1"
export PYTHONDONTWRITEBYTECODE := ""

backend := "backend"
frontend := "frontend"
tasklens := "backend/.venv/bin/tasklens"

# List the recipes with what each does.
[private]
default:
    @just --list --unsorted

# Install the backend (locked) and build the dashboard; skips what is unchanged.
install: install-backend install-frontend

# Install the backend's locked dependencies into backend/.venv (a no-op sync takes ~1 s).
install-backend:
    #!/usr/bin/env bash
    set -euo pipefail
    cd {{backend}}
    if [ -x .venv/bin/tasklens ]; then
        echo "dev: checking backend dependencies (uv sync)…" >&2
        uv sync --frozen --compile-bytecode --quiet
    else  # the first install: uv's own progress, since it takes a minute or two
        echo "dev: installing backend dependencies (uv sync, a minute or two the first time)…" >&2
        uv sync --frozen --compile-bytecode
    fi

# Install the dashboard's dependencies and build it, each only when its inputs changed.
install-frontend:
    #!/usr/bin/env bash
    # frontend/.tasklens-build holds content hashes of what dist/ was last built from: the
    # package files (then `npm install` is skipped) and every build input (then the build is).
    # Content, not mtimes: a checkout or a branch switch touches files it leaves unchanged.
    # Kept beside dist/, not in it, where the server would serve it to anyone.
    # `npm install --no-save` installs exactly the locked versions without rewriting the lock.
    # Not `npm ci`: the lock cannot list rollup's builds for other platforms (the registry here
    # serves only this platform's), and `npm ci` refuses a lock with them missing.
    set -euo pipefail
    cd {{frontend}}
    stamp=.tasklens-build
    packages=$(cat package.json package-lock.json | sha256sum | cut -c1-64)
    inputs=$(find src index.html package.json package-lock.json vite.config.ts tsconfig*.json \
        -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64)
    built=$(cat "$stamp" 2>/dev/null || true)
    if [ -d node_modules ] && [ -f dist/index.html ] \
        && [ "$built" = "packages=$packages inputs=$inputs" ]; then
        echo "dev: dashboard up to date (unchanged since its last build)" >&2
        exit 0
    fi
    if [ ! -d node_modules ] || [ "${built%% *}" != "packages=$packages" ]; then
        echo "dev: installing dashboard dependencies (npm install, about a minute the first time)…" >&2
        npm install --no-save --no-audit --no-fund --loglevel=error
    fi
    echo "packages=$packages" > "$stamp"  # installed; not built until the build succeeds
    echo "dev: building dashboard (tsc + vite)…" >&2
    npm run build --silent
    echo "packages=$packages inputs=$inputs" > "$stamp"

# Embedded mode at http://127.0.0.1:8000: install, then `tasklens serve` (SQLite, no other service).
up: install
    {{tasklens}} serve

# Any `tasklens` command, e.g. `./dev tasklens migrate` (`./dev tasklens --help` lists them).
[positional-arguments]
tasklens *args: install-backend
    {{tasklens}} "$@"

# Enqueue COUNT demo tasks through the running server.
demo count="50": install-backend
    {{tasklens}} demo --count {{count}}

# The whole test suite: lint, types, backend tests against real services, frontend tests.
test: install lint test-backend test-frontend test-e2e
    @backend/.venv/bin/python .ci/junit_total.py backend/.reports/pytest.xml frontend/test-results/vitest.xml frontend/test-results/e2e.xml

# The library's tests on the lowest releases pyproject.toml allows, in backend/.venv-lowest.
test-lowest *args:
    .ci/test-lowest {{args}}

# Lint and type checks: ruff and mypy (backend), tsc, ESLint (with the import contract) and prettier (frontend).
lint:
    cd {{backend}} && .venv/bin/ruff check src tests benchmarks && .venv/bin/ruff format --check src tests benchmarks
    cd {{backend}} && .venv/bin/mypy src tests benchmarks
    cd {{backend}} && .venv/bin/lint-imports --no-cache
    cd {{frontend}} && npm run typecheck --silent && npm run lint --silent && npm run format:check --silent

# Coverage is of the code run in the pytest process; the total is printed last, the figures kept
# in backend/.reports/. Positional arguments: `./dev test-backend -m "not system"` keeps its quotes.
# Backend tests (pytest) with line and branch coverage, e.g. `./dev test-backend tests/test_auth.py -x`.
[positional-arguments]
test-backend *args:
    cd {{backend}} && .venv/bin/pytest --junitxml=.reports/pytest.xml --cov --cov-report=term:skip-covered --cov-report=xml:.reports/coverage.xml --cov-report=json:.reports/coverage.json "$@"
    @backend/.venv/bin/python .ci/coverage_total.py backend/.reports/coverage.json

# In this process against PostgreSQL and Redis, no server or worker started (tests/README.md).
# The inner loop: the backend's unit and integration tests (not system), with their wall time.
[positional-arguments]
test-fast *args: install-backend
    #!/usr/bin/env bash
    set -euo pipefail
    cd {{backend}}
    start=$(date +%s%N)
    status=0
    .venv/bin/pytest -m "not system" -q -p no:cacheprovider "$@" || status=$?
    tenths=$(( ($(date +%s%N) - start) / 100000000 ))
    echo "test-fast: $((tenths / 10)).$((tenths % 10)) s wall (target < 60 s)"
    exit $status

# Frontend unit tests (vitest) and the main bundle's gzipped size.
test-frontend:
    cd {{frontend}} && npm test --silent -- --reporter=default --reporter=junit --outputFile.junit=test-results/vitest.xml
    @echo "main JS bundle: $(cat {{frontend}}/dist/assets/index-*.js | gzip -9 | wc -c) bytes gzipped (target < 250 KB)"

# Headless Chromium (Debian's, via playwright-core), distributed stack: needs PostgreSQL, Redis.
# Browser tests against the real stack; screenshots land in frontend/test-results/.
test-e2e:
    cd {{frontend}} && npm run test:e2e --silent -- --reporter=default --reporter=junit --outputFile.junit=test-results/e2e.xml

# Live-feed latency in the browser (10 and 200 events/s) and dashboard load time.
bench-frontend *args:
    cd {{frontend}} && npm run bench:e2e --silent -- {{args}}

# Regenerate the API contract (specs/openapi.json) and the frontend's types from it.
openapi:
    {{tasklens}} openapi --output specs/openapi.json
    cd {{frontend}} && npm run gen:api --silent

# Benchmarks: throughput with/without the middleware, query times on 2,000,000 rows.
bench *args: install-backend
    cd {{backend}} && .venv/bin/python -m benchmarks {{args}}
