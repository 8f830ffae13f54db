#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Run every documentation example (examples/NAME, built from examples/NAME.c)
# in every mode it has an expected output for, and compare exactly:
#   stdout  with examples/NAME.c.MODE.shown (the output its page shows) or,
#           where the page shows none, expected/NAME.c.MODE;
#   status  0, within DOC_EXAMPLE_TIMEOUT seconds (an example never hangs);
#   stderr  empty, except doc_env's count in the enosys and e2big modes,
#           which must say that system call 463 was called once: the probe.
# Modes (doc_env): native, nomodule, enosys, e2big.
cd "$(dirname "$0")" || exit 1
: "${DOC_EXAMPLE_TIMEOUT:=60}"
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

for src in examples/*.c; do
	[ -f "$src" ] || { echo "# no examples built"; exit 1; }
	name=${src#examples/}
	modes=$(ls "examples/$name".*.shown "expected/$name".* 2>/dev/null |
		sed "s|.*/$name\.||; s|\.shown\$||" | sort -u)
	if [ -z "$modes" ]; then
		echo "# FAIL $name: no expected output (neither its page nor expected/ has one)"
		fail=$((fail + 1))
		continue
	fi
	for mode in $modes; do
		want=examples/$name.$mode.shown
		[ -f "$want" ] || want=expected/$name.$mode
		t0=$(date +%s)
		timeout "$DOC_EXAMPLE_TIMEOUT" ./doc_env "$mode" "./${src%.c}" \
			>"$tmp/out" 2>"$tmp/err"
		rc=$?
		secs=$(($(date +%s) - t0))
		case $mode in
		enosys|e2big) echo "doc_env: syscall 463 called 1 times" >"$tmp/err.want" ;;
		*) : >"$tmp/err.want" ;;
		esac
		why=
		[ $rc = 0 ] || why="exit status $rc, want 0 (124 or 143: timed out)"
		cmp -s "$tmp/out" "$want" || why="${why:+$why; }stdout differs from $want"
		cmp -s "$tmp/err" "$tmp/err.want" || why="${why:+$why; }unexpected stderr"
		if [ -z "$why" ]; then
			echo "# PASS $name $mode (${secs}s)"
			pass=$((pass + 1))
		else
			echo "# FAIL $name $mode (${secs}s): $why"
			echo "# --- stdout (want $want):"; sed 's/^/#   /' "$tmp/out"
			echo "# --- stderr:"; sed 's/^/#   /' "$tmp/err"
			fail=$((fail + 1))
		fi
	done
done
echo "# doc examples: $pass passed, $fail failed"
[ $fail = 0 ]
