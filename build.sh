#!/usr/bin/env bash
# The one entry point: ./build.sh [build|test|demo|package|bench|gobench|faults|fuzz|help]
set -euo pipefail
cd "$(dirname "$0")"

: "${GOFLAGS:=-mod=mod}"
export GOFLAGS

# GO_MIN is the oldest Go this code is built or tested with: the current patched release of
# its Go line, so that no build ships standard-library flaws this code reaches (XML, TLS,
# HTTP/2, ASN.1). Raise it, and go.mod's toolchain line with it, at each Go security release. go.mod
# alone is not enough: with GOTOOLCHAIN=local (as many machines set it), go builds with
# whatever it is.
GO_MIN=1.26.11

# go_check stops unless the go that builds is at least GO_MIN. When the go on PATH is older,
# it asks go to fetch Go GO_MIN from the Go module proxy (GOTOOLCHAIN=goGO_MIN, a checked
# download kept in the module cache), unless BUILD_GO_FETCH=0; if that cannot be had, it
# refuses, naming the minimum.
go_check() {
  local v
  if ! v=$(go env GOVERSION 2>/dev/null) || [[ -z $v ]]; then
    echo "build.sh: no usable go found on PATH; install Go $GO_MIN or newer (https://go.dev/dl/)" >&2
    exit 1
  fi
  if go_at_least "${v%% *}" "$GO_MIN"; then # "go1.26.8 X:nodwarf5": the version is the first word
    return
  fi
  local found=$v
  if [[ ${BUILD_GO_FETCH:-1} != 0 ]]; then
    echo "build.sh: $found is older than Go $GO_MIN, the current patched release; using go$GO_MIN (GOTOOLCHAIN=go$GO_MIN; go fetches it once from the Go module proxy)" >&2
    export GOTOOLCHAIN=go$GO_MIN
    if v=$(go env GOVERSION 2>/dev/null) && go_at_least "${v%% *}" "$GO_MIN"; then
      return
    fi
  fi
  echo "build.sh: $found is older than Go $GO_MIN, the oldest release with the current security fixes," \
    "and go$GO_MIN could not be fetched; install Go $GO_MIN or newer (https://go.dev/dl/)" >&2
  exit 1
}

# go_at_least go1.27rc1 1.26.8 compares as numbers (go1.26.10 is newer than go1.26.8); a release
# candidate or beta comes before its .0; anything else (a devel build) is not known to qualify.
go_at_least() {
  local re='^go([0-9]+)\.([0-9]+)(\.([0-9]+)|(rc|beta)[0-9]+)?$'
  [[ $1 =~ $re ]] || return 1
  local have=("$((10#${BASH_REMATCH[1]}))" "$((10#${BASH_REMATCH[2]}))" "$((10#${BASH_REMATCH[4]:-0}))")
  if [[ -n ${BASH_REMATCH[5]} ]]; then have[2]=-1; fi
  local want i
  IFS=. read -r -a want <<<"$2"
  for i in 0 1 2; do
    if ((have[i] != 10#${want[i]})); then
      ((have[i] > 10#${want[i]}))
      return
    fi
  done
}

# stamp sets STAMP to the -X flags that write the commit, and whether the tree had changes,
# into app/version: explicitly, as go's own VCS stamping is off with -buildvcs=false; outside
# a git checkout the binary says "unknown". STAMP_COMMIT is the same fact as the binary prints it.
stamp() {
  local commit modified=false status
  if commit=$(git rev-parse HEAD 2>/dev/null) && status=$(git status --porcelain 2>/dev/null); then
    [[ -n $status ]] && modified=true
  else
    commit=unknown modified=
  fi
  STAMP="-X ta-defender-alerts/app/version.Commit=$commit -X ta-defender-alerts/app/version.Modified=$modified"
  STAMP_COMMIT=$commit
  [[ $modified == true ]] && STAMP_COMMIT+=" (modified)"
  return 0
}

build() {
  mkdir -p bin
  stamp
  go build -trimpath -ldflags "$STAMP" -o bin/defender_alerts ./app/cmd/defender_alerts
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
  echo "== go vet (linux, windows, darwin)"
  go vet ./...
  GOOS=windows go vet ./...
  GOOS=darwin go vet ./...
  echo "== go test"
  if have_cc; then
    CGO_ENABLED=1 go test -race -count=1 -timeout 12m ./...
  else
    echo "build.sh: no C compiler found (gcc/cc); the race detector needs cgo, so tests run without -race" >&2
    go test -count=1 -timeout 12m ./...
  fi
  echo "== build"
  build
  package_check
}

version() { sed -n 's/^const Version = "\(.*\)"/\1/p' app/version/version.go; }

# The two packages, both of app TA-defender-alerts at the same version: the full one (the
# modular input, three binaries) for forwarders and standalone instances, and the search-time
# one (no binaries, no input) for search heads, indexers and Splunk Cloud search tiers.
PLATFORMS="linux:linux_x86_64: darwin:darwin_x86_64: windows:windows_x86_64:.exe"

# package writes dist/TA-defender-alerts-<version>.tgz and
# dist/TA-defender-alerts-<version>-searchtime.tgz, reproducibly (sorted entries, fixed times and
# owners, gzip without a name or time, -trimpath, no build id), and prints the full package's
# binary declaration (README/binaries.md inside it) and the two file names, last.
package() {
  local v stage top
  v=$(version)
  stage=$(mktemp -d)
  top="$stage/TA-defender-alerts"
  mkdir -p "$top"
  cp -R app.manifest LICENSE README.md README default metadata "$top/"
  [[ -d static ]] && cp -R static "$top/"
  stamp
  local gover t goos dir ext ldflags
  gover=$(go env GOVERSION)
  ldflags="-s -w -buildid= $STAMP"
  {
    echo "# Binaries in this package"
    echo
    echo "Generated by \`./build.sh package\`, from the commit below, for the Binary File Declaration in"
    echo "README.md. Each binary is built from the repository root with the command shown (\`-o\` is"
    echo "relative to the app folder); the build is reproducible, so the same commit and Go release give"
    echo "the same SHA-256."
  } > "$stage/binaries.md"
  for t in $PLATFORMS; do
    IFS=: read -r goos dir ext <<<"$t"
    mkdir -p "$top/$dir/bin"
    CGO_ENABLED=0 GOOS=$goos GOARCH=amd64 go build -trimpath -ldflags "$ldflags" \
      -o "$top/$dir/bin/defender_alerts$ext" ./app/cmd/defender_alerts
    {
      echo
      echo "## $dir/bin/defender_alerts$ext"
      echo
      echo "- sha256: $(sha256sum "$top/$dir/bin/defender_alerts$ext" | cut -d' ' -f1)"
      echo "- go: $gover"
      echo "- commit: $STAMP_COMMIT"
      echo "- build: \`GOFLAGS=$GOFLAGS CGO_ENABLED=0 GOOS=$goos GOARCH=amd64 go build -trimpath -ldflags \"$ldflags\" -o $dir/bin/defender_alerts$ext ./app/cmd/defender_alerts\`"
    } >> "$stage/binaries.md"
  done
  cp "$stage/binaries.md" "$top/README/binaries.md"

  # The search-time package: the same app without the binaries and the input.
  local st="$stage/searchtime/TA-defender-alerts"
  mkdir -p "$st"
  cp -R app.manifest LICENSE README.md README default metadata "$st/"
  [[ -d static ]] && cp -R static "$st/"
  rm -f "$st/default/inputs.conf" "$st/README/inputs.conf.spec"
  find "$st" -mindepth 1 -type d -empty -delete

  mkdir -p dist
  local out="dist/TA-defender-alerts-$v.tgz" outst="dist/TA-defender-alerts-$v-searchtime.tgz"
  tarball "$stage" "$out"
  tarball "$stage/searchtime" "$outst"
  cat "$stage/binaries.md"
  rm -rf "$stage"
  echo "$out"
  echo "$outst"
}

# tarball packs $1/TA-defender-alerts into $2 with fixed modes, times and owners.
tarball() {
  local top="$1/TA-defender-alerts"
  find "$top" -type d -exec chmod 0755 {} +
  find "$top" -type f -exec chmod 0644 {} +
  find "$top" -path '*/bin/*' -type f -exec chmod 0755 {} +
  tar --sort=name --mtime='2025-01-01 00:00:00Z' --owner=0 --group=0 --numeric-owner \
    -C "$1" -cf - TA-defender-alerts | gzip -n -9 > "$2"
}

# package_check builds the packages twice (same bytes?) and checks them against the rules.
package_check() {
  echo "== package"
  local p out
  local -a first second
  out=$(package)
  mapfile -t first < <(tail -2 <<<"$out")
  for p in "${first[@]}"; do cp "$p" "$p.first"; done
  out=$(package)
  mapfile -t second < <(tail -2 <<<"$out")
  head -n -2 <<<"$out"
  for p in "${second[@]}"; do
    if ! cmp -s "$p.first" "$p"; then
      echo "the package $p is not reproducible: two builds differ" >&2; rm -f "$p.first"; exit 1
    fi
    rm -f "$p.first"
    echo "reproducible: $(sha256sum "$p" | cut -c1-16)… $(du -h "$p" | cut -f1) $p"
  done
  go run ./app/cmd/appcheck "${second[@]}"
}

# bench runs the binary as a user would against the stand-ins in their own process, beside the
# raw relay, and prints the table (BENCH_SIZES, default 10000,100000,1000000; BENCH_SIZES=
# skips it); then the same against each API list order (BENCH_ORDERS at BENCH_ORDER_SIZES;
# BENCH_ORDERS= skips them); then graph-alerts against endpoint-alerts (BENCH_FEEDS, in
# BENCH_FEED_ROUNDS rounds, the stand-in and the product on CPUs of their own where the
# machine allows: BENCH_FEED_PIN=auto, on or off; BENCH_FEEDS= skips it); then the indexer
# acknowledgement section (BENCH_ACKS=0 skips it): ack latency x window on BENCH_ACK_SIZE
# alerts (BENCH_ACK_LATENCIES, BENCH_ACK_WINDOWS), the goal rows on BENCH_ACK_GOAL_SIZE in
# BENCH_ACK_GOAL_ROUNDS rounds, BENCH_ACK_KILLS SIGKILLs during a drain, lost acks, and a
# caught-up daemon polling every BENCH_ACK_POLL (BENCH_ACK_PARTS picks among
# latency,goals,crash,lost,caughtup).
bench() {
  build
  go build -trimpath -o bin/standin ./app/cmd/standin
  go build -trimpath -o bin/rawrelay ./app/cmd/rawrelay
  go run ./app/cmd/benchrun -bin bin -sizes "${BENCH_SIZES-10000,100000,1000000}" \
    -orders "${BENCH_ORDERS-lastupdate,created,id,shuffled}" -order-sizes "${BENCH_ORDER_SIZES:-25000,100000}" \
    -feeds "${BENCH_FEEDS-graph-alerts}" -feed-size "${BENCH_FEED_SIZE:-100000}" -feed-rounds "${BENCH_FEED_ROUNDS:-3}" \
    -feed-pin "${BENCH_FEED_PIN:-auto}" \
    -acks="${BENCH_ACKS:-1}" -ack-parts "${BENCH_ACK_PARTS:-latency,goals,crash,lost,caughtup}" \
    -ack-size "${BENCH_ACK_SIZE:-20000}" -ack-goal-size "${BENCH_ACK_GOAL_SIZE:-100000}" \
    -ack-latencies "${BENCH_ACK_LATENCIES:-300ms,1s,3s}" -ack-windows "${BENCH_ACK_WINDOWS:-fixed:1,fixed:8,adaptive:64}" \
    -ack-goal-rounds "${BENCH_ACK_GOAL_ROUNDS:-3}" -ack-kills "${BENCH_ACK_KILLS:-8}" -ack-poll "${BENCH_ACK_POLL:-5s}" \
    ${BENCH_OUT:+-out "$BENCH_OUT"}
}

# faults runs the full fault suite against the real binary; each scenario prints one line.
# FAULTS_RUN picks scenarios (a go test -run pattern, e.g. 'TestFaultAck|TestFaultLost');
# FAULTS_FULL=0 runs their quick form, as ./build.sh test does. app/syslog's TestFaultRsyslog
# (a real rsyslogd, restarted mid-run) runs only here, and says so when rsyslog is missing.
# On a failure it also prints what the failing tests said, and keeps the whole output in a file
# it names (a stalled run's goroutine stacks are in a file the failure names).
faults() {
  local log rc
  log=$(mktemp "${TMPDIR:-/tmp}/faults-XXXXXX")
  set +e
  FAULTS_FULL=${FAULTS_FULL:-1} go test -count=1 -timeout 60m -v -run "${FAULTS_RUN:-^TestFault}" ./app/cmd/defender_alerts ./app/syslog 2>&1 |
    tee "$log" | grep -E '^(FAULT |--- FAIL|FAIL|ok)'
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -ne 0 ]; then
    echo "faults: failed (exit $rc); what the failing tests said (the whole output is in $log):"
    grep -E '^ +[A-Za-z0-9_]+_test\.go:[0-9]+: |^panic: ' "$log" | grep -v '_test\.go:[0-9]*: FAULT ' | head -40
    return "$rc"
  fi
  rm -f "$log"
}

gobench() {
  go test -run '^$' -bench . -benchmem -count=1 ./app/...
}

fuzz() {
  local t=${FUZZTIME:-30s} jobs=${FUZZJOBS:-1}
  # Every fuzz target in the tree, each for $FUZZTIME, all of them even when one fails; one
  # line per target, and a non-zero exit if any failed. Go keeps an input that failed in the
  # package's testdata/fuzz/<target>/: commit it, and it runs with every `go test` from then on.
  # FUZZJOBS=k runs k targets at a time, sharing the CPUs between them (each still runs for
  # the whole $FUZZTIME).
  # FUZZMINIMIZE (default 10s) bounds the time spent shrinking each new input Go finds (60 s
  # otherwise, during which a worker runs nothing new: the "0/sec" lines of large seeds).
  # Go's execs figure counts what workers have reported back, so it is a lower bound.
  case "$jobs" in '' | *[!0-9]* | 0) echo "FUZZJOBS must be a number of targets, 1 or more" >&2; return 2 ;; esac
  local workers=$(( $(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2) / jobs ))
  [ "$workers" -ge 1 ] || workers=1
  local dir pkg name i=0 n=0 failed=0
  dir=$(mktemp -d)
  while read -r pkg; do
    for name in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
      n=$((n + 1))
      while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
      fuzz_one "$pkg" "$name" "$t" "$workers" "$dir/$(printf '%03d' "$n")" &
    done
  done < <(go list ./app/...)
  wait || true
  echo
  echo "fuzz summary ($n targets, $t each, $jobs at a time):"
  for i in "$dir"/*.line; do
    cat "$i"
    grep -q ' ok$' "$i" || failed=$((failed + 1))
  done
  rm -rf "$dir"
  if [ "$failed" -gt 0 ]; then
    echo "fuzz: $failed of $n targets failed" >&2
    return 1
  fi
}

# fuzz_one runs one target and writes its summary line to $5.line (its log to $5.log).
fuzz_one() {
  local pkg=$1 name=$2 t=$3 workers=$4 out=$5 rc=0 start secs execs result kept
  echo "== fuzz $pkg $name ($t)"
  start=$(date +%s)
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "$t" -fuzzminimizetime "${FUZZMINIMIZE:-10s}" -parallel "$workers" "$pkg" >"$out.log" 2>&1 || rc=$?
  secs=$(($(date +%s) - start))
  execs=$(grep -o 'execs: [0-9]*' "$out.log" | tail -1 | cut -d' ' -f2 || true)
  kept=$(grep -o 'testdata/fuzz/[^ ]*' "$out.log" | tail -1 || true)
  if [ "$rc" -eq 0 ]; then
    result=ok
  elif [ -z "$kept" ] && [ "$(grep -c '^    ' "$out.log")" -eq 1 ] && grep -q '^    context deadline exceeded$' "$out.log" &&
    go test -count=1 -run "^${name}\$" "$pkg" >>"$out.log" 2>&1; then
    # Go 1.26's fuzz coordinator can fail a target at the end of -fuzztime with a bare
    # "context deadline exceeded" and no input (go.dev/issue/75804, fixed in Go 1.27): no
    # input failed, and the target's seeds and kept inputs pass when run again.
    result="Go's end-of-run deadline race (go.dev/issue/75804), no input failed: ok"
  else
    result="FAILED"
    [ -n "$kept" ] && result="FAILED (input kept in $(go list -f "{{.Dir}}" "$pkg")/$kept)"
    echo "== fuzz $name failed:"
    tail -30 "$out.log"
  fi
  printf '%-52s %-28s %5ss %12s execs  %s\n' "${pkg#ta-defender-alerts/}" "$name" "$secs" "${execs:-?}" "$result" >"$out.line"
}

case "${1:-build}" in
  build|demo|package|test|bench|gobench|faults|fuzz) go_check ;;
esac

case "${1:-build}" in
  build) build ;;
  demo) build; exec bin/defender_alerts demo "${@:2}" ;;
  package) package ;;
  test) test_all ;;
  bench) bench ;;
  gobench) gobench ;;
  faults) faults ;;
  fuzz) fuzz ;;
  help|-h|--help)
    echo "usage: ./build.sh [build|test|demo|package|bench|gobench|faults|fuzz]"
    echo "  build  builds bin/defender_alerts for this machine"
    echo "  demo   builds, then runs the collector against a simulated tenant and Splunk (~25 s; -feed graph-alerts for Graph)"
    echo "  package  writes dist/TA-defender-alerts-<version>.tgz (the Splunk app, three binaries, README/binaries.md)"
    echo "           and dist/TA-defender-alerts-<version>-searchtime.tgz (no binaries, no input: search heads, indexers)"
    echo "  test   gofmt check, go vet, go test -race (every test), then build"
    echo "  bench  the end-to-end benchmark: the binary vs a raw relay, 10k/100k/1M alerts, acks on/off; each API list order;"
    echo "         acks: latency x window, 100k-alert goals, SIGKILLs, lost acks, a new alert when caught up"
    echo "  gobench  the Go micro-benchmarks (decoding, encoding + gzip, HEC over loopback)"
    echo "  faults   the full fault suite (SIGKILLs, HEC and API failures, a live tenant, an unwritable state folder, rsyslog restarts)"
    echo "  fuzz   runs every fuzz target for FUZZTIME (default 30s) each, FUZZJOBS (default 1) at a time"
    ;;
  *) echo "build.sh: unknown command \"$1\" (try ./build.sh help)" >&2; exit 2 ;;
esac
