# TaskLens recipes. `./dev <recipe>` installs just/uv when missing and runs these.

set shell := ["bash", "-euo", "pipefail", "-c"]
set dotenv-load := false

export UV_COMPILE_BYTECODE := "1"
export PYTHONDONTWRITEBYTECODE := ""

backend := "backend"
frontend := "frontend"
tasklens := "backend/.venv/bin/tasklens"

default:
    @just --list

# Install the backend (locked) and build the dashboard.
install: install-backend install-frontend

install-backend:
    cd {{backend}} && uv sync --frozen --compile-bytecode --quiet

# `npm install --no-save` installs exactly the locked versions without rewriting the lock.
# Not `npm ci`: the lock cannot list rollup's builds for other platforms (the registry here
# serves only this platform's), and `npm ci` refuses a lock with them missing.
install-frontend:
    cd {{frontend}} && npm install --no-save --no-audit --no-fund --loglevel=error && npm run build --silent

# Embedded mode: SQLite file + in-process broker at http://127.0.0.1:8000 (first command).
up: install
    {{tasklens}} serve

# Distributed mode, one process each (needs TASKLENS_REDIS_URL and a Postgres DATABASE_URL).
serve:
    {{tasklens}} serve

worker *args:
    {{tasklens}} worker {{args}}

migrate:
    {{tasklens}} migrate

demo count="50":
    {{tasklens}} demo --count {{count}}

# The whole test suite: lint, types, backend tests against real services, frontend tests.
test: install lint test-backend test-frontend test-e2e
    @backend/.venv/bin/python .ci/junit_total.py backend/.reports/pytest.xml frontend/test-results/vitest.xml frontend/test-results/e2e.xml

# The library's tests on the lowest releases pyproject.toml allows, in backend/.venv-lowest.
test-lowest *args:
    .ci/test-lowest {{args}}

lint:
    cd {{backend}} && .venv/bin/ruff check src tests benchmarks && .venv/bin/ruff format --check src tests benchmarks
    cd {{backend}} && .venv/bin/mypy src tests benchmarks
    cd {{frontend}} && npm run typecheck --silent && npm run format:check --silent

test-backend *args:
    cd {{backend}} && .venv/bin/pytest --junitxml=.reports/pytest.xml {{args}}

test-frontend:
    cd {{frontend}} && npm test --silent -- --reporter=default --reporter=junit --outputFile.junit=test-results/vitest.xml
    @echo "main JS bundle: $(cat {{frontend}}/dist/assets/index-*.js | gzip -9 | wc -c) bytes gzipped (target < 250 KB)"

# Browser tests: headless Chromium (Debian's, via playwright-core) against the real distributed
# stack, which needs PostgreSQL and Redis. Screenshots land in frontend/test-results/.
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
