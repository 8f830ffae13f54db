#!/bin/sh
# SPDX-License-Identifier: MIT
# libstackres_test in every mode a patched guest offers, each asserting the
# tier (and the thread cache's exit_free(2)) it must get there:
#   native                  stackres, exit_free
#   LIBSTACKRES_TIER=guard  guard markers (forced below the module)
#   LIBSTACKRES_TIER=mprotect
#   --trace463 enosys|e2big 463 fails as on 6.12 without the series or as
#                           setxattrat() on 6.13+: the clear_child_tid
#                           fallback, 463 called once (the probe)
#   module unloaded         rmmod stackres: guard markers (the series has
#                           MADV_GUARD_INSTALL); the module is loaded again
cd "$(dirname "$0")" || exit 1
ko=/lib/modules/stackres.ko
fail=0

run() {
	echo "# ==== $*"
	env "$@" || fail=$((fail + 1))
}

run SR_TEST_EXPECT_TIER=stackres SR_TEST_EXPECT_EXIT_FREE=1 ./libstackres_test
run LIBSTACKRES_TIER=guard SR_TEST_EXPECT_TIER=guard SR_TEST_EXPECT_EXIT_FREE=1 \
	./libstackres_test
run LIBSTACKRES_TIER=mprotect SR_TEST_EXPECT_TIER=mprotect SR_TEST_EXPECT_EXIT_FREE=1 \
	./libstackres_test
run ./libstackres_test --trace463 enosys
run ./libstackres_test --trace463 e2big

echo "# ==== module unloaded"
if rmmod stackres; then
	if [ -e /dev/stackres ]; then
		echo "not ok 1 /dev/stackres is still there after rmmod"
		fail=$((fail + 1))
	fi
	run SR_TEST_EXPECT_TIER=guard SR_TEST_EXPECT_EXIT_FREE=1 ./libstackres_test
	if ! insmod "$ko" || [ ! -c /dev/stackres ]; then
		echo "not ok 1 stackres.ko loaded again"
		fail=$((fail + 1))
	fi
else
	echo "not ok 1 rmmod stackres"
	fail=$((fail + 1))
fi
echo "# libstackres: $fail run(s) failed"
[ $fail = 0 ]
