#!/usr/bin/env bash
# The benchmark matrix of mcp-orch, in ONE run: every target (direct connections, mcp-orch's
# faces, the peer gateways) against two downstreams (our Rust fixture and the reference
# server-everything), over several rounds with the target order alternating, then a Markdown
# table of medians. See README.md, "Performance".
#
#   benches/run.sh                 # full matrix (3 rounds; ~30-40 min on 2 cores)
#   benches/run.sh --quick         # 1 round, smaller counts (a few minutes)
#   benches/run.sh --rounds 5 --out /tmp/bench
#   BENCH_TARGETS="direct-stdio orch-stdio orch-mcp" benches/run.sh --quick
#   BENCH_ALT_ORCH=/tmp/other/mcp-orch benches/run.sh   # A/B: adds rows for another build
#
# Installs the pinned peers into .deps/ (ignored): npm supergateway and mcp-proxy from
# benches/peers/npm/package-lock.json, PyPI mcp-proxy from benches/peers/python/requirements.txt
# into a venv. Everything runs on 127.0.0.1; every phase is bounded and stops by itself.
# Output: <out>/results.jsonl (one JSON line per measurement), <out>/machine.md, <out>/table.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

rounds=3
quick=0
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --quick) quick=1; rounds=1; shift ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
out=${out:-$root/target/bench/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out/configs"
results="$out/results.jsonl"
: > "$results"

if [ "$quick" = 1 ]; then
  counts=(--list 20 --warmup 100 --seq 500 --calls 1000 --sessions 8,32)
  soak_calls=20000
else
  counts=(--list 50 --warmup 200 --seq 2000 --calls 3000 --sessions 8,32)
  soak_calls=100000
fi

log() { echo "run.sh: $*" >&2; }

# --- pinned peers and test servers ------------------------------------------------------
install_peers() {
  scripts/install-test-deps
  local npm_dest="$root/.deps/bench-npm" src="$root/benches/peers/npm"
  if ! { [ -f "$npm_dest/.installed-lock" ] && cmp -s "$npm_dest/.installed-lock" "$src/package-lock.json"; }; then
    log "installing pinned npm peers into .deps/bench-npm"
    mkdir -p "$npm_dest"
    cp "$src/package.json" "$src/package-lock.json" "$npm_dest/"
    (cd "$npm_dest" && npm ci --no-audit --no-fund --loglevel=error >&2)
    cp "$src/package-lock.json" "$npm_dest/.installed-lock"
  fi
  local venv="$root/.deps/bench-venv" req="$root/benches/peers/python/requirements.txt"
  if ! { [ -f "$venv/.installed-req" ] && cmp -s "$venv/.installed-req" "$req"; }; then
    log "installing pinned PyPI mcp-proxy into .deps/bench-venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --no-deps -r "$req" >&2
    cp "$req" "$venv/.installed-req"
  fi
}
install_peers

# --- release builds ---------------------------------------------------------------------
log "building release binaries and the load generator"
cargo build --release --locked --bins >&2
loadgen=$(cargo bench --locked --no-run --bench loadgen --message-format=json \
  | sed -n 's/.*"executable":"\([^"]*loadgen-[^"]*\)".*/\1/p' | tail -1)
[ -x "$loadgen" ] || { log "could not find the loadgen executable"; exit 1; }

ORCH="$root/target/release/mcp-orch"
FIX="$root/target/release/mcp-orch-fixture"
EVERY="$root/.deps/npm/node_modules/.bin/mcp-server-everything"
SG="$root/.deps/bench-npm/node_modules/.bin/supergateway"
MPN="$root/.deps/bench-npm/node_modules/.bin/mcp-proxy"
MPY="$root/.deps/bench-venv/bin/mcp-proxy"

# --- configs ----------------------------------------------------------------------------
cfg="$out/configs"
printf '{"mcpServers":{"fx":{"command":"%s","args":["--stdio"]}}}\n' "$FIX" > "$cfg/fixture.json"
printf '{"mcpServers":{"ev":{"command":"%s","args":["stdio"]}}}\n' "$EVERY" > "$cfg/everything.json"
many() { # many <count> <name> <command> <args-json> [extra-json]
  local n=$1 name=$2 cmd=$3 args=$4 extra=${5:-} i sep=""
  printf '{"mcpServers":{'
  for i in $(seq -w 1 "$n"); do
    printf '%s"%s%s":{"command":"%s","args":%s%s}' "$sep" "$name" "$i" "$cmd" "$args" "$extra"
    sep=","
  done
  printf '}}\n'
}
many 10 fx "$FIX" '["--stdio"]' > "$cfg/fixture-x10.json"
many 10 ev "$EVERY" '["stdio"]' > "$cfg/everything-x10.json"
many 20 s "$FIX" '["--stdio","--tools","50","--page-size","0"]' ',"tools":{"include":["tool_*"]}' > "$cfg/fixture-1000.json"

# --- one target -------------------------------------------------------------------------
# downstream_cmd <downstream>: the downstream as a command line (for direct stdio and peers).
downstream_cmd() {
  case "$1" in
    fixture) echo "$FIX --stdio" ;;
    everything) echo "$EVERY stdio" ;;
    fixture-1000) echo "$FIX --stdio --tools 969 --page-size 0" ;;
  esac
}

# run_target <target> <downstream> <round> [extra loadgen args...]; LABEL=... names the
# downstream differently in the results (the downstream still decides the commands).
run_target() {
  local target=$1 ds=$2 round=$3; shift 3
  local tool arg orch_tool config ds_cmd
  case "$ds" in
    everything*) tool=echo; arg=message; orch_tool=ev__echo ;;
    *) tool=echo; arg=text; orch_tool=fx__echo ;;
  esac
  config="$cfg/$ds.json"
  ds_cmd=$(downstream_cmd "$ds")
  local common=(run --target "$target" --downstream "${LABEL:-$ds}" --round "$round" --env-remove PROXY_PORT --env-remove RUST_LOG)
  local -a a
  case "$target" in
    direct-stdio) a=(--wire stdio --tool "$tool" --arg "$arg" -- $ds_cmd) ;;
    direct-http)
      case "$ds" in
        everything) a=(--wire http --url 'http://127.0.0.1:{port}/mcp' --env 'PORT={port}' --tool "$tool" --arg "$arg" -- "$EVERY" streamableHttp) ;;
        fixture-1000) a=(--wire http --url 'http://127.0.0.1:{port}/mcp' --tool "$tool" --arg "$arg" -- "$FIX" --http '{port}' --tools 969) ;;
        *) a=(--wire http --url 'http://127.0.0.1:{port}/mcp' --tool "$tool" --arg "$arg" -- "$FIX" --http '{port}') ;;
      esac ;;
    direct-sse) a=(--wire sse --url 'http://127.0.0.1:{port}/sse' --env 'PORT={port}' --tool "$tool" --arg "$arg" -- "$EVERY" sse) ;;
    relay-stdio) a=(--wire stdio --tool "$tool" --arg "$arg" -- "$loadgen" relay --listen stdio -- $ds_cmd) ;;
    relay-http) a=(--wire http --url 'http://127.0.0.1:{port}/mcp' --tool "$tool" --arg "$arg" -- "$loadgen" relay --listen '{port}' -- $ds_cmd) ;;
    orch-stdio) a=(--wire stdio --tool "$orch_tool" --arg "$arg" -- "$ORCH" --mcp-config "$config") ;;
    orch-mcp) a=(--wire http --url 'http://127.0.0.1:{port}/mcp' --tool "$orch_tool" --arg "$arg" -- "$ORCH" --mcp-config "$config" --port '{port}' --no-stdio) ;;
    alt-orch-stdio) a=(--wire stdio --tool "$orch_tool" --arg "$arg" -- "$ALT" --mcp-config "$config") ;;
    alt-orch-mcp) a=(--wire http --url 'http://127.0.0.1:{port}/mcp' --tool "$orch_tool" --arg "$arg" -- "$ALT" --mcp-config "$config" --port '{port}' --no-stdio) ;;
    orch-sse) a=(--wire sse --url 'http://127.0.0.1:{port}/sse' --tool "$orch_tool" --arg "$arg" -- "$ORCH" --mcp-config "$config" --port '{port}' --no-stdio) ;;
    supergateway) a=(--wire http --url 'http://127.0.0.1:{port}/mcp' --tool "$tool" --arg "$arg" -- "$SG" --stdio "$ds_cmd" --outputTransport streamableHttp --stateful --port '{port}' --logLevel none) ;;
    supergateway-sse) a=(--wire sse --url 'http://127.0.0.1:{port}/sse' --tool "$tool" --arg "$arg" -- "$SG" --stdio "$ds_cmd" --port '{port}' --logLevel none) ;;
    mcp-proxy-npm) a=(--wire http --url 'http://127.0.0.1:{port}/mcp' --tool "$tool" --arg "$arg" -- "$MPN" --host 127.0.0.1 --port '{port}' --server stream -- $ds_cmd) ;;
    mcp-proxy-py) a=(--wire http --url 'http://127.0.0.1:{port}/mcp' --tool "$tool" --arg "$arg" -- "$MPY" --host 127.0.0.1 --port '{port}' --log-level WARNING -- $ds_cmd) ;;
    *) log "unknown target $target"; return 1 ;;
  esac
  # loadgen puts its own args before `--`; ours (counts, phases) go there too.
  local -a before=() after=()
  local seen=0 x
  for x in "${a[@]}"; do
    if [ "$seen" = 0 ] && [ "$x" = "--" ]; then seen=1; continue; fi
    if [ "$seen" = 0 ]; then before+=("$x"); else after+=("$x"); fi
  done
  log "round $round: ${LABEL:-$ds} / $target"
  "$loadgen" "${common[@]}" "${before[@]}" "$@" -- "${after[@]}" >> "$results" \
    || log "  $target on $ds reported failures or errors (see $results)"
}

# --- which targets ----------------------------------------------------------------------
all_targets="direct-stdio direct-http direct-sse relay-stdio relay-http orch-stdio orch-mcp orch-sse supergateway supergateway-sse mcp-proxy-npm mcp-proxy-py"
targets=${BENCH_TARGETS:-$all_targets}
# A/B in one run: BENCH_ALT_ORCH=/path/to/another/mcp-orch adds its stdio face and /mcp as
# rows `alt-orch-stdio` and `alt-orch-mcp` (e.g. a build with a candidate fix).
ALT=${BENCH_ALT_ORCH:-}
if [ -n "$ALT" ]; then
  [ -x "$ALT" ] || { log "BENCH_ALT_ORCH=$ALT is not an executable"; exit 2; }
  targets="$targets alt-orch-stdio alt-orch-mcp"
fi

# mcp-orch's legacy /sse face: measured only when the build under test serves it (an older
# build may not).
if [[ " $targets " == *" orch-sse "* ]]; then
  if ! "$loadgen" run --target orch-sse --downstream probe --wire sse --url 'http://127.0.0.1:{port}/sse' \
      --tool fx__echo --list 1 --seq 0 --in-flight 0 --sessions 0 --idle-ms 0 \
      -- "$ORCH" --mcp-config "$cfg/fixture.json" --port '{port}' --no-stdio >/dev/null 2>&1; then
    log "this mcp-orch build does not serve /sse yet: skipping orch-sse"
    targets=$(echo " $targets " | sed 's/ orch-sse / /')
  fi
fi

targets_for() { # targets_for <downstream>
  local t
  for t in $targets; do
    case "$1/$t" in
      fixture/direct-sse) ;;                 # the fixture has no legacy SSE face
      *) echo "$t" ;;
    esac
  done
}
reverse() { printf '%s\n' "$@" | tac; }

# --- machine ----------------------------------------------------------------------------
{
  echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; RAM $(free -g | awk '/Mem:/{print $2}') GiB; $(uname -sr)"
  echo "- rustc $(rustc --version | cut -d' ' -f2), node $(node --version), $(python3 --version)"
  echo "- peers: supergateway $(node -p "require('$root/.deps/bench-npm/node_modules/supergateway/package.json').version"), npm mcp-proxy $(node -p "require('$root/.deps/bench-npm/node_modules/mcp-proxy/package.json').version"), PyPI mcp-proxy $("$MPY" --version 2>&1 | awk '{print $NF}'), server-everything $(node -p "require('$root/.deps/npm/node_modules/@modelcontextprotocol/server-everything/package.json').version")"
  echo "- mcp-orch $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet || echo '+dirty'), release profile; rounds: $rounds$([ "$quick" = 1 ] && echo ' (quick)')"
  echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$out/machine.md"
cat "$out/machine.md" >&2

# --- the matrix -------------------------------------------------------------------------
for round in $(seq 1 "$rounds"); do
  downstreams=(fixture everything)
  if [ $((round % 2)) = 0 ]; then downstreams=(everything fixture); fi
  for ds in "${downstreams[@]}"; do
    order=$(targets_for "$ds")
    # Alternate the order every round so warm caches and thermal drift even out.
    if [ $((round % 2)) = 0 ]; then order=$(reverse $order); fi
    for target in $order; do
      run_target "$target" "$ds" "$round" "${counts[@]}"
    done
  done
  # Many servers: cold start and idle memory of mcp-orch with 10 downstreams, and the floor:
  # the same 10 servers started at once without a proxy.
  for set in fixture-x10 everything-x10; do
    if [[ " $targets " == *" orch-stdio "* ]]; then
      run_target orch-stdio "$set" "$round" --expect-tools 10 --list 5 --seq 0 --in-flight 0 --sessions 0
      LABEL="$set" run_target direct-stdio "${set%-x10}" "$round" --copies 10
    fi
  done
  # 1,000 tools: tools/list latency (mcp-orch: 20 servers x 50 tools from its cache;
  # direct and peers: one fixture listing 1,000 tools itself).
  order=""
  for t in $targets; do case "$t" in direct-sse|supergateway-sse) ;; *) order="$order $t" ;; esac; done
  if [ $((round % 2)) = 0 ]; then order=$(reverse $order); fi
  for target in $order; do
    run_target "$target" fixture-1000 "$round" --expect-tools 1000 --list 100 --seq 0 --in-flight 0 --sessions 0
  done
  echo "- load average after round $round: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/machine.md"
done

# A long run: memory must not grow over $soak_calls calls at 32 in flight.
for target in orch-mcp orch-stdio; do
  if [[ " $targets " == *" $target "* ]]; then
    cp "$cfg/fixture.json" "$cfg/fixture-soak.json"
    run_target "$target" fixture-soak 1 --list 0 --seq 0 --in-flight 0 --sessions 0 --soak "$soak_calls"
  fi
done
echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/machine.md"

"$loadgen" table "$results" > "$out/table.md"
{
  echo "### Machine"; echo; cat "$out/machine.md"; echo
  echo "### Results"; echo; cat "$out/table.md"
} | tee "$out/report.md"
log "results: $results; report: $out/report.md"
