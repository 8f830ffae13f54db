#!/bin/sh
# SPDX-License-Identifier: MIT
# The examples in the guest.
#   overflow   at every tier (stackres natively, guard markers and mprotect
#              forced below it): its exact output
#   fibers     (x86_64) 10,000 fibers on stackres stacks; 2,000 on each
#              lower tier (the same checks, fewer fibers: the debug kernel
#              makes each stack a few milliseconds); each run asserts its tier
#   coro2      (x86_64) coroutine2 generators on the same allocator
cd "$(dirname "$0")" || exit 1
fail=0

run() {
	echo "# ==== $*"
	env "$@" || fail=$((fail + 1))
}

overflow() {
	want="tier: $1
parser: stack overflow caught in the guard of its own stack"
	shift
	echo "# ==== ${*:+$* }./overflow"
	out=$(env "$@" ./overflow)
	rc=$?
	echo "$out" | sed 's/^/# /'
	if [ $rc != 0 ] || [ "$out" != "$want" ]; then
		echo "# overflow: status $rc, want 0 and the output:"
		echo "$want" | sed 's/^/#   /'
		fail=$((fail + 1))
	fi
}

overflow stackres
overflow "guard markers" LIBSTACKRES_TIER=guard
overflow mprotect LIBSTACKRES_TIER=mprotect

if [ -x fibers ]; then
	run FIBERS_EXPECT_TIER=stackres ./fibers 10000
	run LIBSTACKRES_TIER=guard FIBERS_EXPECT_TIER=guard ./fibers 2000
	run LIBSTACKRES_TIER=mprotect FIBERS_EXPECT_TIER=mprotect ./fibers 2000
	run ./coro2
else
	echo "# fibers, coro2: x86_64 only (Debian's Boost is 64-bit)"
fi
echo "# examples: $fail run(s) failed"
[ $fail = 0 ]
