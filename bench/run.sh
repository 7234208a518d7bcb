#!/usr/bin/env bash
# The introspection benchmark of BENCHMARKS.md, reproducible on a fresh machine:
#   bash bench/run.sh            # SQLite and PostgreSQL+Redis, each against oidc-provider
# Needs the machine's PostgreSQL (127.0.0.1:5432, user postgres) and Redis (127.0.0.1:6379).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
(cd bench/oidc-provider && npm ci --no-audit --no-fund --silent)
cargo build --release --bin poortwachter
cargo build --release --example bench
mkdir -p target/bench
for backend in sqlite postgres; do
  ./target/release/examples/bench --backend "$backend" --compare-oidc-provider \
    --out "target/bench/results-$backend.md" "$@"
done
echo "results: target/bench/results-sqlite.md target/bench/results-postgres.md"
