#!/usr/bin/env bash
# The one entry point: ./build.sh [build|test|demo|bench|fuzz|help]
set -euo pipefail
cd "$(dirname "$0")"

: "${GOFLAGS:=-mod=mod}"
export GOFLAGS

build() {
  mkdir -p bin
  go build -trimpath -o bin/defender_alerts ./app/cmd/defender_alerts
  echo "built bin/defender_alerts"
}

have_cc() {
  command -v "${CC:-gcc}" >/dev/null 2>&1 || command -v cc >/dev/null 2>&1
}

test_all() {
  echo "== gofmt"
  local unformatted
  unformatted=$(gofmt -l app)
  if [[ -n $unformatted ]]; then
    echo "gofmt would change these files:"; echo "$unformatted"; exit 1
  fi
  echo "== go vet"
  go vet ./...
  echo "== go test"
  if have_cc; then
    CGO_ENABLED=1 go test -race -count=1 -timeout 12m ./...
  else
    echo "build.sh: no C compiler found (gcc/cc); the race detector needs cgo, so tests run without -race" >&2
    go test -count=1 -timeout 12m ./...
  fi
  echo "== build"
  build
}

bench() {
  go test -run '^$' -bench . -benchmem -count=1 ./app/...
}

fuzz() {
  local t=${FUZZTIME:-30s}
  # Every fuzz target in the tree, each for $FUZZTIME.
  local pkg name
  while read -r pkg; do
    for name in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
      echo "== fuzz $pkg $name ($t)"
      go test -run '^$' -fuzz "^${name}\$" -fuzztime "$t" "$pkg"
    done
  done < <(go list ./app/...)
}

case "${1:-build}" in
  build) build ;;
  demo) build; exec bin/defender_alerts demo "${@:2}" ;;
  test) test_all ;;
  bench) bench ;;
  fuzz) fuzz ;;
  help|-h|--help)
    echo "usage: ./build.sh [build|test|demo|bench|fuzz]"
    echo "  build  builds bin/defender_alerts for this machine"
    echo "  demo   builds, then runs the collector against a simulated tenant and Splunk (~25 s)"
    echo "  test   gofmt check, go vet, go test -race (every test), then build"
    echo "  bench  runs the Go benchmarks and prints their figures"
    echo "  fuzz   runs every fuzz target for FUZZTIME (default 30s) each"
    ;;
  *) echo "build.sh: unknown command \"$1\" (try ./build.sh help)" >&2; exit 2 ;;
esac
