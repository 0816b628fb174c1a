#!/usr/bin/env bash
# The demo under a local Prometheus (with the shipped rules) and Alertmanager, without
# Docker: `make run-stack`. It runs Debian's prometheus and prometheus-alertmanager (or
# any in PATH) on the compose stack's own prometheus.yml and alertmanager.yml, with only
# the addresses and the rule paths rewritten, prints every certificate alert once they
# fire (one of each kind: the demo's renewal families raise them all), and runs until
# Ctrl-C. The exporter, Prometheus and Alertmanager listen on loopback only.
#
#   EXPORTER_PORT (9856), PROMETHEUS_PORT (9090), ALERTMANAGER_PORT (9093): the ports;
#   RUN_ARGS: more exporter flags (for example --demo.certificates=200).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
exporter_port=${EXPORTER_PORT:-9856}
prometheus_port=${PROMETHEUS_PORT:-9090}
alertmanager_port=${ALERTMANAGER_PORT:-9093}

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

dir=$(mktemp -d)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
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
Waiting for the certificate alerts (under a minute). Stop with Ctrl-C.

EOF

am="--alertmanager.url=http://127.0.0.1:$alertmanager_port"
kinds='alertname=~"CertView(Certificate|Issuer).*"'
for _ in $(seq 120); do
	for pid in "${pids[@]}"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "a process of the stack exited; its logs:" >&2
			tail -n 20 "$dir"/*.log >&2
			exit 1
		fi
	done
	# Every kind: the four renewal kinds of certificate alert and the issuer alert.
	if [[ $("$amtool" "$am" alert query "$kinds" -o simple 2>/dev/null | awk 'NR > 1 { print $1 }' | sort -u | wc -l) -ge 4 ]] &&
		"$amtool" "$am" alert query "$kinds" 'renewal_state="renewed_not_deployed"' -o simple 2>/dev/null | grep -q CertView; then
		break
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
wait "${pids[0]}"
