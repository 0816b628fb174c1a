#!/usr/bin/env bash
# The demo under a local Prometheus (with the shipped rules) and Alertmanager, without
# Docker: `make run-stack`. It runs Debian's prometheus and prometheus-alertmanager (or
# any in PATH) on the compose stack's own prometheus.yml and alertmanager.yml, with only
# the addresses and the rule paths rewritten, prints every certificate alert once they
# fire (one of each kind: the demo's renewal families raise them all), and runs until
# Ctrl-C. The exporter, Prometheus and Alertmanager listen on loopback only.
#
#   EXPORTER_PORT (9856), PROMETHEUS_PORT (19090), ALERTMANAGER_PORT (19093): the ports,
#     off the packages' own 9090 and 9093, where Debian starts them as services;
#   RUN_ARGS: more exporter flags (for example --demo.certificates=200). It scrapes every
#     5 s, for inventories of the demo's size: 60 certificates at least (the renewal
#     families need them) and some tens of thousands at most.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
exporter_port=${EXPORTER_PORT:-9856}
prometheus_port=${PROMETHEUS_PORT:-19090}
alertmanager_port=${ALERTMANAGER_PORT:-19093}

prometheus=$(command -v prometheus || true)
alertmanager=$(command -v prometheus-alertmanager || command -v alertmanager || true)
amtool=$(command -v amtool || true)
if [[ -z $prometheus || -z $alertmanager || -z $amtool ]]; then
	echo "run-stack needs prometheus, alertmanager and amtool: apt-get install prometheus prometheus-alertmanager" >&2
	exit 1
fi
if [[ ! -x $root/certview_exporter ]]; then
	echo "run-stack needs ./certview_exporter: make build" >&2
	exit 1
fi

for port in "$exporter_port" "$prometheus_port" "$alertmanager_port"; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		echo "port $port is in use: set EXPORTER_PORT, PROMETHEUS_PORT or ALERTMANAGER_PORT" >&2
		exit 1
	fi
done

dir=$(mktemp -d)
pids=()
keep_logs=
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [[ -n $keep_logs ]]; then
		echo "the logs are kept in $dir" >&2
	else
		rm -rf "$dir"
	fi
}
# failed shows the end of each log, keeps them, and exits.
failed() {
	echo "$1; the end of each log:" >&2
	tail -n 20 "$dir"/*.log >&2
	keep_logs=1
	exit 1
}
# alive fails unless every process of the stack still runs.
alive() {
	for pid in "${pids[@]}"; do
		kill -0 "$pid" 2>/dev/null || failed "a process of the stack exited"
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The compose files, with loopback addresses, this checkout's rules and a faster pace
# (scrapes and evaluations every 5 s) so that the alerts show within a minute.
sed -e "s|'exporter:9856'|'127.0.0.1:$exporter_port'|" \
	-e "s|'alertmanager:9093'|'127.0.0.1:$alertmanager_port'|" \
	-e "s|/etc/prometheus/certview/|$root/deploy/prometheus/|" \
	-e 's|^\(  *\)scrape_interval: .*|\1scrape_interval: 5s|' \
	-e 's|^\(  *\)evaluation_interval: .*|\1evaluation_interval: 5s|' \
	-e 's|^\(  *\)scrape_timeout: .*|\1scrape_timeout: 5s|' \
	"$root/deploy/compose/prometheus.yml" >"$dir/prometheus.yml"
sed -e 's|group_wait: .*|group_wait: 5s|' "$root/deploy/compose/alertmanager.yml" >"$dir/alertmanager.yml"

"$root/certview_exporter" --demo --web.listen-address="127.0.0.1:$exporter_port" ${RUN_ARGS:-} >"$dir/exporter.log" 2>&1 &
pids+=($!)
"$alertmanager" --config.file="$dir/alertmanager.yml" --storage.path="$dir/am" \
	--web.listen-address="127.0.0.1:$alertmanager_port" --cluster.listen-address= >"$dir/alertmanager.log" 2>&1 &
pids+=($!)
"$prometheus" --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/tsdb" \
	--web.listen-address="127.0.0.1:$prometheus_port" >"$dir/prometheus.log" 2>&1 &
pids+=($!)

cat <<EOF

certview_exporter --demo under Prometheus and Alertmanager (logs in $dir):
  exporter:     http://127.0.0.1:$exporter_port/metrics
  Prometheus:   http://127.0.0.1:$prometheus_port/alerts
  Alertmanager: http://127.0.0.1:$alertmanager_port/#/alerts
Waiting for the certificate alerts (about a minute). Stop with Ctrl-C.

EOF

am="--alertmanager.url=http://127.0.0.1:$alertmanager_port"
kinds='alertname=~"CertView(Certificate|Issuer).*"'
# Wait for every kind the renewal families raise (the three certificate alerts in both
# renewal states, and the issuer alert), then until the count of certificate alerts has
# held for an evaluation interval (5 s): Prometheus sends them in batches.
stable=0 last=
for ((i = 0; ; i++)); do
	alive
	alerts=$("$amtool" "$am" alert query "$kinds" -o extended 2>/dev/null || true)
	kinds_seen=$(sed -n 's/.*alertname="\([^"]*\)".*renewal_state="\([^"]*\)".*/\1 \2/p' <<<"$alerts" | sort -u | grep -c . || true)
	count=$(grep -c CertView <<<"$alerts" || true)
	if [[ $count == "$last" ]]; then stable=$((stable + 1)); else stable=0; fi
	last=$count
	if ((kinds_seen >= 7 && stable >= 5)); then
		break
	fi
	if ((i >= 180)); then
		failed "not every kind of certificate alert fired within 3 minutes ($kinds_seen of 7 kinds seen)"
	fi
	sleep 1
done

# Each kind of certificate alert, by renewal state: how many certificates, and one of them.
echo "Certificate alerts in Alertmanager (alert, renewal_state, certificates, one of them):"
"$amtool" "$am" alert query "$kinds" -o extended |
	sed -n 's/.*alertname="\([^"]*\)".*common_name="\([^"]*\)".*renewal_state="\([^"]*\)".*/\1\t\3\t\2/p' | sort -u |
	awk -F '\t' '{ k = $1 "\t" $2; n[k]++; if (!(k in one)) one[k] = $3 }
		END { for (k in n) { split(k, f, "\t"); printf "  %-36s %-21s %4d  %s\n", f[1], f[2], n[k], one[k] } }' | sort
echo
echo "Running; stop with Ctrl-C."
while sleep 5; do alive; done
