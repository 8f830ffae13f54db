#!/bin/sh
# uffd-unit-tests-each.sh: runs in the guest of `make check-upstream`, installed next
# to mm/uffd-unit-tests. That program prints no TAP and stops at the first case that
# fails hard (err() exits); its "events" cases do so intermittently on the unpatched
# kernel too, and then every later case goes unreported on both kernels. So run it
# one group at a time (-f NAME, a substring: "-f move" also runs move-pmd), each
# under a timeout, and print one TAP line per "NAME on MEMORY" case. A case is
# numbered by its place in the test list and the memory type list, so both kernels
# number it alike whatever failed before it.
cd "$(dirname "$0")" || exit 1
tests=$(./uffd-unit-tests -l) || exit 1
mems="anon shmem shmem-private hugetlb hugetlb-private"
# The whole program normally takes about 20 s under TCG; two hung groups must still
# leave the rest within run_kselftest.sh's 150 s for this script.
per_group=${UFFD_GROUP_TIMEOUT:-30}

echo "TAP version 13"
seen=" "
fails=0
for t in $tests; do
	case $seen in *" $t "*) continue ;; esac
	out=$(timeout "$per_group" ./uffd-unit-tests -f "$t" 2>&1)
	status=$?
	echo "$out" | sed 's/^/# /'
	[ $status = 124 ] && echo "# group '$t' timed out after ${per_group}s"
	# Each "Testing NAME on MEMORY... " starts a case; its result is what follows up
	# to the next one.
	res=$(echo "$out" | awk -v tests="$tests" -v mems="$mems" '
		BEGIN { nt = split(tests, T); for (i = 1; i <= nt; i++) ti[T[i]] = i
			nm = split(mems, M); for (i = 1; i <= nm; i++) mi[M[i]] = i }
		function flush() {
			if (name == "") return
			if (text ~ /skipped/) printf "ok %d %s # SKIP%s\n", num, name, reason
			else if (text ~ /done/ && text !~ /ERROR|failed/) printf "ok %d %s\n", num, name
			else printf "not ok %d %s\n", num, name
			name = ""
		}
		{
			line = $0
			while ((p = index(line, "Testing ")) > 0) {
				text = text " " substr(line, 1, p - 1)
				flush()
				line = substr(line, p + 8)
				split(line, w, " ")
				mem = w[3]; sub(/\.\.\.$/, "", mem)
				name = w[1] " on " mem
				num = (ti[w[1]] - 1) * nm + mi[mem]
				seen_t = seen_t " " w[1]
				reason = ""
				text = ""
				line = substr(line, index(line, "...") + 3)
			}
			text = text " " line
			if (match(line, /skipped \[reason: [^]]*/))
				reason = " " substr(line, RSTART + 17, RLENGTH - 17)
		}
		END { flush(); print "SEEN" seen_t }')
	echo "$res" | grep -v '^SEEN'
	echo "$res" | grep -q '^not ok' && fails=$((fails + 1))
	[ $status = 0 ] || fails=$((fails + 1))
	seen="$seen$(echo "$res" | sed -n 's/^SEEN//p') $t "
done
[ $fails = 0 ]
