# awk [-v reruns=K] -f upstream-compare.awk UNPATCHED.tap PATCHED.tap
#     [UNPATCHED-RERUN.tap x K  PATCHED-RERUN.tap x K]:
# compare run_kselftest.sh TAP streams of the same tests (make check-upstream) and
# print a markdown table: one row per test program ("selftests: T: P") with its
# subtest counts, plus one row for every subtest ("# ok N name" inside a program)
# whose result differs.
#
# A new failure is a program or subtest that passed on the unpatched kernel and
# failed, timed out or never reported on the patched one. With K re-runs of those
# programs on each kernel, it stays a new failure only if it passed in every re-run on
# the unpatched kernel and failed in every re-run on the patched one; otherwise it is
# reported as flaky, with its counts. The last lines are "REGRESSED T:P" for every
# program with a new failure and "NEW n FLAKY m".
#
# Subtests are matched by number, since a failing one often prints a different
# description ("futex_wake private returned: 0" for "futex_waitv private"); numbers
# restart in a program that runs several (futex's run.sh), so the key is the number
# and how many times it was seen in that program.

function subresult(line) {
	if (line ~ /# SKIP/) return "skip"
	if (line ~ /^# not ok/) return (line ~ /# TODO/) ? "xfail" : "fail"
	if (line ~ /# XFAIL/) return "xfail"
	return "pass"
}
function subname(line,    d) {
	d = line
	sub(/^# (not )?ok [0-9]+ ?/, "", d)
	if (d ~ /^# (SKIP|XFAIL)/) sub(/^# [A-Z]+ ?/, "", d)
	else sub(/ *# (SKIP|XFAIL|TODO).*$/, "", d)
	gsub(/[ \t]+$/, "", d)
	return d
}
function progresult(line,    r) {
	if (line ~ /# SKIP/) return "skip"
	if (line ~ /^ok/) return "pass"
	if (line ~ /# TIMEOUT/) return "TIMEOUT"
	r = line
	if (sub(/.*# exit=/, "", r)) return "FAIL (exit=" r ")"
	return "FAIL"
}
function failed(r) { return r != "pass" && r != "skip" && r != "xfail" }
function get(a, r, k) { return ((r, k) in a) ? a[r, k] : "never reported" }

FNR == 1 { run++; prog = "" }
{ sub(/\r$/, "") }
# The runner's header "# selftests: T: P" starts a program's output.
/^# selftests: [^ ]+: / {
	prog = $3 $4
	if (run <= 2 && !(prog in seen)) { seen[prog] = 1; order[++nprog] = prog }
	delete occ
	next
}
/^# (not )?ok [0-9]+/ && prog != "" {
	num = $0
	sub(/^# (not )?ok /, "", num)
	sub(/[^0-9].*$/, "", num)
	k = prog SUBSEP num SUBSEP (++occ[num])
	res[run, k] = subresult($0)
	desc[run, k] = subname($0)
	cnt[run, prog, res[run, k]]++
	if (run <= 2 && !(k in subseen)) { subseen[k] = 1; suborder[prog, ++nsub[prog]] = k }
	next
}
/^(not )?ok [0-9]+ selftests: / {
	p = $0
	sub(/^(not )?ok [0-9]+ selftests: /, "", p)	# "T: P[ # ...]"
	split(p, f, " ")
	p = f[1] f[2]
	if (run <= 2 && !(p in seen)) { seen[p] = 1; order[++nprog] = p }
	pres[run, p] = progresult($0)
	prog = ""
}

function cell(r, p,    s, c) {
	s = get(pres, r, p)
	c = ""
	if (cnt[r, p, "pass"]) c = c ", " cnt[r, p, "pass"] " pass"
	if (cnt[r, p, "fail"]) c = c ", " cnt[r, p, "fail"] " fail"
	if (cnt[r, p, "xfail"]) c = c ", " cnt[r, p, "xfail"] " xfail"
	if (cnt[r, p, "skip"]) c = c ", " cnt[r, p, "skip"] " skip"
	return c == "" ? s : s " (" substr(c, 3) ")"
}
# Verdict for a result b on the unpatched and a on the patched kernel; the re-runs
# are looked up in arr under key (runs 3 .. reruns+2 unpatched, then patched).
function verdict(b, a, arr, key,    r, bf, af) {
	if (b == "pass" && failed(a)) {
		bf = 0; af = 1
		for (r = 3; r <= reruns + 2; r++) bf += failed(get(arr, r, key))
		for (r = reruns + 3; r <= 2 * reruns + 2; r++) af += failed(get(arr, r, key))
		if (bf || af < reruns + 1) {
			flaky++
			return "flaky: failed " bf + 0 " of " reruns + 1 " runs unpatched, " af " of " reruns + 1 " patched"
		}
		new++
		return "**NEW FAILURE**" (reruns ? " (in all " reruns + 1 " runs)" : "")
	}
	if (failed(b) && a == "pass") return "fixed"
	return b == a ? "same" : "differs"
}
END {
	reruns += 0
	print "| test | unpatched | patched | verdict |"
	print "|---|---|---|---|"
	new = flaky = 0
	for (i = 1; i <= nprog; i++) {
		p = order[i]
		n0 = new
		v = verdict(get(pres, 1, p), get(pres, 2, p), pres, p)
		rows = ""
		for (j = 1; j <= nsub[p]; j++) {
			k = suborder[p, j]
			sb = get(res, 1, k)
			sa = get(res, 2, k)
			if (sb == sa) continue
			d = ((1, k) in desc) ? desc[1, k] : desc[2, k]
			if ((1, k) in desc && (2, k) in desc && desc[2, k] != d)
				d = d " / patched: " desc[2, k]
			rows = rows sprintf("| %s › %s | %s | %s | %s |\n", p, d, sb, sa, verdict(sb, sa, res, k))
		}
		if (new > n0) {
			regressed[++nreg] = p
			if (v !~ /NEW FAILURE/) v = "**NEW FAILURE** in a subtest"
		} else if (v == "same" && cell(1, p) != cell(2, p)) {
			v = "subtests differ"
		}
		printf "| %s | %s | %s | %s |\n", p, cell(1, p), cell(2, p), v
		printf "%s", rows
	}
	for (i = 1; i <= nreg; i++) print "REGRESSED " regressed[i]
	print "NEW " new " FLAKY " flaky
}
