# Count results of a run_kselftest.sh TAP stream (one guest).
# A test program that printed subtests (kselftest_harness: "# ok N name") counts per
# subtest; a program without subtests counts once. A program whose top-level result
# is a failure while none of its subtests failed (crash, timeout after the last
# subtest) adds one failure, so nothing that failed can be hidden.
function flush_prog(line) {
	if (nsub > 0) {
		P += sp; F += sf; S += ss
		if (line ~ /^not ok/ && line !~ /# SKIP/ && sf == 0)
			F++
	} else if (line ~ /# SKIP/) {
		S++
	} else if (line ~ /^not ok/) {
		F++
	} else {
		P++
	}
	progs++
	nsub = sp = sf = ss = 0
}
{ sub(/\r$/, "") }
/^# (not )?ok [0-9]+ / {
	nsub++
	if ($0 ~ /# SKIP/) ss++
	else if ($0 ~ /^# not ok/) sf++
	else sp++
	next
}
/^(not )?ok [0-9]+ selftests: / { flush_prog($0) }
END { printf "%d %d %d %d\n", P, F, S, progs }
