#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# musl_threads_test at the scale make check can afford: the guests are TCG on
# debug kernels (KASAN, lockdep), where a musl thread costs ~10 ms to create
# and reap, so 100,000 threads per churn test would take ~20 minutes. Any
# MUSL_* variable set in the environment wins (see the test's header; the
# full scale is the program's default).
cd "$(dirname "$0")" || exit 1
: "${MUSL_CHURN_THREADS:=400}" "${MUSL_TRACED_THREADS:=100}"
: "${MUSL_FALLBACK_THREADS:=80}" "${MUSL_SMALL_THREADS:=60}" "${MUSL_FORKS:=6}"
export MUSL_CHURN_THREADS MUSL_TRACED_THREADS MUSL_FALLBACK_THREADS
export MUSL_SMALL_THREADS MUSL_FORKS
exec ./musl_threads_test
