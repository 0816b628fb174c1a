# Reads `go test -bench` output and prints, for every benchmark that has a "baseline"
# sub-benchmark, each sibling's figures as a ratio to that baseline from the same run.
# Usage: awk -f .ci/benchratio.awk bench.out
/^Benchmark/ {
	name = $1
	sub(/-[0-9]+$/, "", name)
	n = split(name, parts, "/")
	if (n < 2) next
	variant = parts[n]
	parent = substr(name, 1, length(name) - length(variant) - 1)
	if (!(parent in seen)) { seen[parent] = 1; order[++np] = parent }
	if (!((parent, variant) in hasv)) { hasv[parent, variant] = 1; vars[parent] = vars[parent] " " variant }
	for (i = 3; i < NF; i += 2) {
		unit = $(i + 1)
		val[parent, variant, unit] = $i
		if (!((parent, unit) in hasu)) { hasu[parent, unit] = 1; units[parent] = units[parent] " " unit }
	}
}
END {
	for (p = 1; p <= np; p++) {
		parent = order[p]
		if (!((parent, "baseline") in hasv)) continue
		printf "\n%s (ratio = variant / baseline, same run)\n", parent
		printf "  %-14s %-14s %16s %16s %10s\n", "variant", "unit", "baseline", "variant", "ratio"
		nv = split(vars[parent], vlist, " ")
		nu = split(units[parent], ulist, " ")
		for (v = 1; v <= nv; v++) {
			if (vlist[v] == "baseline") continue
			for (u = 1; u <= nu; u++) {
				b = val[parent, "baseline", ulist[u]]
				x = val[parent, vlist[v], ulist[u]]
				if (b == "" || x == "") continue
				r = (b + 0 == 0) ? "-" : sprintf("%.3f", x / b)
				printf "  %-14s %-14s %16s %16s %10s\n", vlist[v], ulist[u], b, x, r
			}
		}
	}
}
