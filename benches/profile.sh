#!/usr/bin/env bash
# Profiles mcp-orch's steady state under the load generator, for the core developer:
#
#   benches/profile.sh                      # callgrind, /mcp face, fixture downstream
#   benches/profile.sh --face stdio         # the stdio face
#   benches/profile.sh --calls 5000 --in-flight 32
#   benches/profile.sh --perf               # perf record (cpu-clock sampling) instead
#   benches/profile.sh --strace             # syscall counts per call (strace -c, all threads)
#   benches/profile.sh --orch /tmp/x/mcp-orch   # profile another build
#   benches/profile.sh --tools1000 --list 200 --calls 0   # tools/list of 1,000 tools, 20 servers
#
# callgrind counts instructions (no machine noise): the counters are zeroed after a warm-up
# and dumped right after the measured calls (`callgrind_control`), so start-up and shutdown
# are not in the profile. The measured phase is `--list` tools/list calls, `--calls`
# sequential calls, then `--calls` more at `--in-flight` (0 = skip). Output:
# <out>/callgrind.out.*, the top functions by exclusive and inclusive cost in
# <out>/{exclusive,inclusive}.txt (printed too) and every function's callers in callers.txt.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

face=mcp
calls=2000
in_flight=0
tool=callgrind
orch=""
list=5
tools1000=0
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --face) face=$2; shift 2 ;;
    --calls) calls=$2; shift 2 ;;
    --in-flight) in_flight=$2; shift 2 ;;
    --perf) tool=perf; shift ;;
    --strace) tool=strace; shift ;;
    --orch) orch=$2; shift 2 ;;
    --list) list=$2; shift 2 ;;
    --tools1000) tools1000=1; shift ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "profile.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
out=${out:-$root/target/bench/profile-$face-$tool-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"

cargo build --release --locked --bins >&2
loadgen=$(cargo bench --locked --no-run --bench loadgen --message-format=json \
  | sed -n 's/.*"executable":"\([^"]*loadgen-[^"]*\)".*/\1/p' | tail -1)
[ -x "$loadgen" ] || { echo "profile.sh: no loadgen executable" >&2; exit 1; }
ORCH=${orch:-$root/target/release/mcp-orch}
FIX="$root/target/release/mcp-orch-fixture"
{
  printf '{"mcpServers":{"fx":{"command":"%s","args":["--stdio"]}' "$FIX"
  if [ "$tools1000" = 1 ]; then
    for i in $(seq -w 1 20); do
      printf ',"s%s":{"command":"%s","args":["--stdio","--tools","50"],"tools":{"include":["tool_*"]}}' "$i" "$FIX"
    done
  fi
  printf '}}\n'
} > "$out/mcp-config.json"
expect=1
[ "$tools1000" = 1 ] && expect=1000

case "$tool" in
  callgrind)
    wrap=(valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out.%p" --dump-instr=no)
    after_warmup='callgrind_control -z {pid} >/dev/null'
    after_run='callgrind_control -d {pid} >/dev/null'
    ;;
  perf)
    wrap=()
    after_warmup="perf record -e cpu-clock -F 4999 -g -p {pid} -o $out/perf.data >/dev/null 2>&1 & echo \$! > $out/perf.pid; sleep 0.5"
    after_run="kill -INT \$(cat $out/perf.pid); sleep 1"
    ;;
  strace)
    wrap=()
    # Every thread of the process (strace -p attaches to the threads it is given).
    after_warmup="strace -f -c -o $out/strace.txt \$(for t in /proc/{pid}/task/*; do printf -- '-p %s ' \${t##*/}; done) 2>/dev/null & echo \$! > $out/strace.pid; sleep 1"
    after_run="kill -INT \$(cat $out/strace.pid); sleep 1"
    ;;
esac

case "$face" in
  mcp) face_args=(--wire http --url 'http://127.0.0.1:{port}/mcp' -- "${wrap[@]}" "$ORCH" --mcp-config "$out/mcp-config.json" --port '{port}' --no-stdio) ;;
  stdio) face_args=(--wire stdio -- "${wrap[@]}" "$ORCH" --mcp-config "$out/mcp-config.json") ;;
  sse) face_args=(--wire sse --url 'http://127.0.0.1:{port}/sse' -- "${wrap[@]}" "$ORCH" --mcp-config "$out/mcp-config.json" --port '{port}' --no-stdio) ;;
  *) echo "profile.sh: --face mcp|stdio|sse" >&2; exit 2 ;;
esac
levels=0
[ "$in_flight" != 0 ] && levels=$in_flight

# Both hooks run with {pid} = the mcp-orch process (valgrind runs it in the same process).
"$loadgen" run --target "orch-$face" --downstream profile --tool fx__echo --arg text \
  --env-remove PROXY_PORT --env-remove RUST_LOG --timeout-ms 120000 --stop-grace-ms 30000 \
  --idle-ms 0 --list "$list" --expect-tools "$expect" --warmup 300 --seq "$calls" --in-flight "$levels" --calls "$calls" --sessions 0 \
  --exec-after-warmup "$after_warmup" --exec-after-run "$after_run" \
  "${face_args[@]}" | tee "$out/loadgen.jsonl"

case "$tool" in
  callgrind)
    dump=$(ls -t "$out"/callgrind.out.*.1 2>/dev/null | head -1 || true)
    [ -n "$dump" ] || { echo "profile.sh: no callgrind dump of the measured phase" >&2; exit 1; }
    # (the first lines are the thread roots, which a mid-run dump lists at 100 %)
    callgrind_annotate --threshold=100 "$dump" 2>/dev/null | sed -n 1,80p > "$out/exclusive.txt"
    callgrind_annotate --inclusive=yes --threshold=100 "$dump" 2>/dev/null | sed -n 1,100p > "$out/inclusive.txt"
    callgrind_annotate --tree=caller --threshold=100 "$dump" 2>/dev/null > "$out/callers.txt"
    ;;
  strace)
    cp "$out/strace.txt" "$out/exclusive.txt"; : > "$out/inclusive.txt"
    ;;
  perf)
    perf report -i "$out/perf.data" --no-children --sort symbol --stdio 2>/dev/null | sed -n 1,80p > "$out/exclusive.txt"
    perf report -i "$out/perf.data" --children --sort symbol --stdio 2>/dev/null | sed -n 1,120p > "$out/inclusive.txt"
    ;;
esac
echo "== exclusive (self) cost"; cat "$out/exclusive.txt"
echo "== inclusive cost"; cat "$out/inclusive.txt"
echo "profile.sh: measured $list tools/list + $calls sequential calls$( [ "$in_flight" != 0 ] && echo " + $calls at $in_flight in flight"); files in $out" >&2
