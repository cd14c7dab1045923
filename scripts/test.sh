#!/usr/bin/env bash
# The whole test suite: installs what it needs, type-checks, then runs unit and
# integration tests (real nats-server, SQLite and PostgreSQL, the openstack CLI).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
scripts/setup.sh --test
echo "== typecheck"
npx --no-install tsc -p tsconfig.json
echo "== tests"
node scripts/run-tests.mjs "$@"
