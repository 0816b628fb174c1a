# Reads the tables of two `make bench-dashboards` runs (before.md after.md) and prints
# the largest size's Prometheus figures of both and after/before, for .ci/bench-budget.
# Usage: awk -v base=REV -v head=REV -f .ci/bench-budget.awk before.md after.md
function cells(line, c,    n, i) {
	n = split(line, c, "|")
	for (i = 1; i <= n; i++) gsub(/^ +| +$/, "", c[i])
	return n
}
function number(s) {
	if (!match(s, /[0-9]+(\.[0-9]+)?/)) return ""
	return substr(s, RSTART, RLENGTH)
}
function keep(key, label, value) {
	if (value == "") return
	if (!(key in label_of)) { label_of[key] = label; order[++n_keys] = key }
	val[FILENAME == ARGV[1] ? "before" : "after", key] = value
}
FNR == 1 { in_main = 0; in_groups = 0 }
/^\| \| / {
	in_main = 1; in_groups = 0
	n = cells($0, c)
	size = c[n - 1]
	next
}
/^\| rule group \|/ { in_main = 0; in_groups = 1; next }
/^\|/ && in_main {
	n = cells($0, c)
	label = c[2]
	if (label ~ /^plain scan/) label = "plain scan"
	if (label ~ /^of which/) next
	keep(label, label, number(c[n - 1]) (c[n - 1] ~ / GB/ ? " GB" : (c[n - 1] ~ / ms/ ? " ms" : "")))
	next
}
/^\|/ && in_groups {
	n = cells($0, c)
	if (c[2] ~ /^certview\./) keep("group " c[2], "rule group " c[2], number(c[4]) " ms")
	next
}
!/^\|/ { in_main = 0; in_groups = 0 }
END {
	printf "| at %s | before (%s) | after (%s) | after/before |\n", size, base, head
	print "|---|---|---|---|"
	for (i = 1; i <= n_keys; i++) {
		k = order[i]
		b = val["before", k]; a = val["after", k]
		r = (b + 0 > 0 && a != "") ? sprintf("%.2fx", (a + 0) / (b + 0)) : "-"
		printf "| %s | %s | %s | %s |\n", label_of[k], b == "" ? "-" : b, a == "" ? "-" : a, r
	}
}
