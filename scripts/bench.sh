#!/usr/bin/env bash
# THE benchmark command (issue 6, point 8): runs every benchmark of the project in release mode
# on this machine and collects each performance figure of issues 2-5 into one table,
# target/bench-report.md (the raw output of each bench is kept in target/bench-logs/).
#
#   bash scripts/bench.sh
#
# Needs MariaDB on 127.0.0.1:3306 like the tests (ISYMPHONY_SYNC_TEST_MYSQL overrides the URL);
# it is brought up the same way scripts/test.sh does. Takes about 5-10 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

mysql_ping() { mysql --protocol=tcp -h127.0.0.1 -P3306 -uroot -e 'SELECT 1' >/dev/null 2>&1; }
if [ -z "${ISYMPHONY_SYNC_TEST_MYSQL:-}" ] && ! mysql_ping; then
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 60); do mysql_ping && break; sleep 1; done
  mysql_ping || { echo "bench.sh: MariaDB did not come up on 127.0.0.1:3306" >&2; exit 1; }
fi

# The Live API's benchmark runs a real Asterisk (issue 17): the one scripts/test.sh provides.
ASTERISK_PREFIX="$(bash scripts/asterisk/ensure.sh)"
export ASTERISK_PREFIX

logs=target/bench-logs
report=target/bench-report.md
mkdir -p "$logs"
cargo bench --locked --no-run >/dev/null 2>&1 || cargo bench --locked --no-run

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for b in server_bench freepbx_bench reconcile_bench agent live_bench binlog_bench; do
  echo "== cargo bench --bench $b" >&2
  cargo bench --locked --bench "$b" 2>"$logs/$b.err" | tee "$logs/$b.txt"
done
# Issue 20: the first sync and full verify at 1,000 extensions, also behind a slow server.
echo "== cargo bench --bench reconcile_bench -- 1000 (and BENCH_DELAY_MS=5)" >&2
cargo bench --locked --bench reconcile_bench -- 1000 2>"$logs/reconcile_1000.err" | tee "$logs/reconcile_1000.txt"
BENCH_DELAY_MS=5 cargo bench --locked --bench reconcile_bench -- 1000 \
  2>"$logs/reconcile_slow.err" | tee "$logs/reconcile_slow.txt"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# A Rust Debug duration ("215.3ms", "1.2s", "850.0µs") in milliseconds.
to_ms() {
  awk -v d="$1" 'BEGIN {
    if (d ~ /ms$/) { sub(/ms$/, "", d); print d + 0 }
    else if (d ~ /µs$/ || d ~ /us$/) { sub(/(µs|us)$/, "", d); print d / 1000 }
    else if (d ~ /ns$/) { sub(/ns$/, "", d); print d / 1e6 }
    else if (d ~ /s$/) { sub(/s$/, "", d); print d * 1000 }
    else print "?" }'
}
# met VALUE OP TARGET -> yes/no
met() { awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN {
  if (v == "" || v == "?") { print "n/a"; exit }
  ok = (op == "<=") ? (v + 0 <= t + 0) : (v + 0 >= t + 0); print ok ? "yes" : "**NO**" }'; }

s=$logs/server_bench.txt f=$logs/freepbx_bench.txt r=$logs/reconcile_bench.txt a=$logs/agent.txt
post_s=$(sed -n 's/.* \([0-9.]*\) POST\/s.*/\1/p' "$s" | head -1)
get1_s=$(sed -n 's/.* \([0-9.]*\) GET\/s.*/\1/p' "$s" | head -1)
get_p50=$(sed -n 's/^GET .*: p50 \([0-9.]*\) ms.*/\1/p' "$s" | head -1)
readmap=$(to_ms "$(awk '$1 == "read+map" { print $5 }' "$f" | head -1)")
read_p50=$(to_ms "$(awk '$1 == "read" { print $5 }' "$f" | head -1)")
map_p50=$(to_ms "$(awk '$1 == "map" { print $5 }' "$f" | head -1)")
step() { awk -v n="$1" 'index($0, n) == 1 { sub(n, ""); print; exit }' "$r"; }
init_line=$(step "initial sync")
init_s=$(awk '{ print $1 }' <<<"$init_line")
conv_line=$(step "converged pass")
one_line=$(step "one-change pass")
full_line=$(step "full verify")
secs() { awk '{ print $1 }' <<<"$1"; }
reqs() { sed 's/^ *[0-9.]* s *[0-9]* operations *//' <<<"$1"; }
# Issue 20 at 1,000: "<seconds> s ... CPU agent <a> s, endpoint <e> s[, <n> connections]".
r1=$logs/reconcile_1000.txt rs=$logs/reconcile_slow.txt
at1000() { awk -v n="$1" 'index($0, n) == 1 { sub(n, ""); print; exit }' "$2"; }
cpu_of() { sed -n 's/.*CPU agent \([0-9.]*\) s, endpoint \([0-9.]*\) s.*/agent \1 s, endpoint \2 s/p' <<<"$1"; }
sync1k=$(at1000 "initial sync" "$r1") verify1k=$(at1000 "full verify" "$r1")
slow1k=$(at1000 "initial sync" "$rs")
slow_conns=$(sed -n 's/.*, \([0-9]*\) connections.*/\1/p' <<<"$slow1k")
conc=$(sed -n 's/.*concurrency \([0-9]*\),.*/\1/p' "$rs" | head -1)
lat_p50=$(sed -n 's/^latency over .*p50 \([0-9.]*\)s.*/\1/p' "$a" | head -1)
lat_p95=$(sed -n 's/^latency over .*p95 \([0-9.]*\)s.*/\1/p' "$a" | head -1)
lat_n=$(sed -n 's/^latency over \([0-9]*\) changes.*/\1/p' "$a" | head -1)
# The agent bench measures idle twice: syncing to a separate server, then to its own endpoint.
rss=$(sed -n 's/^idle: RSS \([0-9.]*\) MB.*/\1/p' "$a" | sed -n 1p)
rss_emb=$(sed -n 's/^idle: RSS \([0-9.]*\) MB.*/\1/p' "$a" | sed -n 2p)
cpu=$(sed -n 's/^idle: .*CPU \([0-9.]*\)% of one core.*/\1/p' "$a" | head -1)
db_cpu=$(sed -n "s/^idle MariaDB: the agent's queries \([0-9.]*\)% of one core.*/\1/p" "$a" | head -1)
idle_lines=$(grep '^idle' "$a" || true)

model=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
cpus=$(nproc)
mem=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

{
  echo "# Benchmark report"
  echo
  echo "Command: \`bash scripts/bench.sh\` (release mode; raw output in \`target/bench-logs/\`)."
  echo "Machine: $cpus CPUs, $model, $mem RAM. Commit $commit, $(date -u '+%Y-%m-%d %H:%M UTC')."
  echo "Load average before / after: $load_before / $load_after (other work on the machine shares the CPUs)."
  echo
  echo "| Issue | Figure | Target | Measured | Met? |"
  echo "|---|---|---|---|---|"
  echo "| 2 | GET of a 10,000-extension collection, p50 | ≤ 20 ms | ${get_p50:-?} ms | $(met "$get_p50" '<=' 20) |"
  echo "| 20 | POST throughput, 8 concurrent keep-alive clients | ≥ 10,000 POST/s | ${post_s:-?} POST/s | $(met "$post_s" '>=' 10000) |"
  echo "| 20 | GET of one object, 8 concurrent keep-alive clients | ≥ 30,000 GET/s | ${get1_s:-?} GET/s | $(met "$get1_s" '>=' 30000) |"
  echo "| 20 | First sync at 1,000 extensions (CPU of each side) | (side by side with cxpanel: ≥ 25×) | $(secs "$sync1k") s, $(reqs "$sync1k" | sed 's/ *CPU.*//'), CPU $(cpu_of "$sync1k") | - |"
  echo "| 20 | Full verify at 1,000 extensions | (side by side with cxpanel: ≥ 30×) | $(secs "$verify1k") s, $(reqs "$verify1k" | sed 's/ *CPU.*//'), CPU $(cpu_of "$verify1k") | - |"
  echo "| 20 | Same first sync, 5 ms added to every answer | ≤ 4 s | $(secs "$slow1k") s | $(met "$(secs "$slow1k")" '<=' 4) |"
  echo "| 20 | Connections the agent opened for it | ≤ 2 × concurrency (${conc:-?}) | ${slow_conns:-?} | $(met "$slow_conns" '<=' $((2 * ${conc:-0}))) |"
  echo "| 3 | FreePBX read + map, 10,000 extensions with users, p50 | ≤ 300 ms | ${readmap:-?} ms (read ${read_p50:-?} ms, map ${map_p50:-?} ms) | $(met "$readmap" '<=' 300) |"
  echo "| 4 | Initial sync of 10,000 extensions with users into the embedded server | ≤ 30 s | ${init_s:-?} s | $(met "$init_s" '<=' 30) |"
  echo "| 4 | Converged pass at 10,000 | (report) | $(secs "$conv_line") s, $(reqs "$conv_line") | - |"
  echo "| 4 | One-change pass at 10,000 | (report) | $(secs "$one_line") s, $(reqs "$one_line") | - |"
  echo "| 4 | Full verify at 10,000 | (report) | $(secs "$full_line") s, $(reqs "$full_line") | - |"
  echo "| 13 | Change latency SQL commit → visible on the server, default settings, ${lat_n:-?} changes at 1,000, p50 | ≤ 0.25 s | ${lat_p50:-?} s | $(met "$lat_p50" '<=' 0.25) |"
  echo "| 13 | Same, p95 | ≤ 0.5 s | ${lat_p95:-?} s | $(met "$lat_p95" '<=' 0.5) |"
  echo "| 5 | Agent RSS at 10,000 extensions, idle, syncing to a separate iSymphony (its endpoint on, serving status and metrics) | ≤ 50 MB | ${rss:-?} MB | $(met "$rss" '<=' 50) |"
  echo "| 5 | Same, syncing to its own embedded server, which then holds the 10,000 extensions and users too | ≤ 50 MB | ${rss_emb:-?} MB | $(met "$rss_emb" '<=' 50) |"
  echo "| 13 | Agent CPU when idle (polling) | < 0.5% of one core | ${cpu:-?} % | $(met "$cpu" '<=' 0.5) |"
  echo "| 13 | MariaDB CPU for the idle agent's queries (USER_STATISTICS) | < 0.5% of one core | ${db_cpu:-?} % | $(met "$db_cpu" '<=' 0.5) |"
  echo
  echo "Live API against the real Asterisk (issue 17; targets: snapshot ≤ 1 s, event-to-visible"
  echo "p50 ≤ 2 ms and p99 ≤ 20 ms with no growth, GET of 1,000 live extensions p50 ≤ 5 ms, action"
  echo "round trip p50 ≤ 10 ms, idle CPU ≤ 0.2 %, RSS growth ≤ 20 MB):"
  echo
  grep '^FIGURE' "$logs/live_bench.txt" | sed 's/^FIGURE /    /' || true
  echo
  echo "Binary-log change detection against the poll, on a private MariaDB with --log-bin (issue 20"
  echo "point 3; targets: change → iSymphony p50 ≤ 60 ms and p95 ≤ 120 ms at 1,000 extensions over"
  echo "100 changes, idle CPU < 0.5 % of a core for the agent and for mariadbd):"
  echo
  grep '^BINLOG' "$logs/binlog_bench.txt" | sed 's/^BINLOG /    /' || true
  echo
  echo "Idle details (separate target, then embedded):"
  echo
  sed 's/^/    /' <<<"$idle_lines"
} >"$report"
cat "$report"
