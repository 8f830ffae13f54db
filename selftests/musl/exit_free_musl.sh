#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The exit_free(2) tests (selftests/exit_free) linked with the patched musl
# instead of glibc: the same system calls through musl's syscall(), errno,
# clone wrapper and headers. The long kernel-ordering fixtures (order, vfork:
# ~40 s in a debug guest) are left to the exit_free target, which runs them
# with glibc; they exercise the kernel, not the libc.
cd "$(dirname "$0")" || exit 1
exec ./exit_free_test_musl -F order -F vfork
