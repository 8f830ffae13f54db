// SPDX-License-Identifier: GPL-2.0
/*
 * Futex waits and wakes, a small futex lock, and memory-mapping calls, all
 * through gr_syscall(): they run on raw clone threads, where libc's errno and
 * lock owner fields would belong to the main thread.
 */
#include <linux/futex.h>
#include <sys/mman.h>
#include <time.h>

#include "internal.h"

long gr_futex_wait(_Atomic uint32_t *w, uint32_t val, long timeout_ms)
{
	struct timespec ts, *tp = NULL;

	if (timeout_ms >= 0) {
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (timeout_ms % 1000) * 1000000L;
		tp = &ts;
	}
	/* On i386 struct timespec is the 32-bit one SYS_futex expects. */
	return gr_sys4(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, tp);
}

long gr_futex_wake(_Atomic uint32_t *w, int n)
{
	return gr_sys3(SYS_futex, w, FUTEX_WAKE_PRIVATE, n);
}

void gr_relax(void)
{
	__builtin_ia32_pause();
}

void gr_lock(_Atomic uint32_t *l)
{
	uint32_t c = 0;
	int spin;

	if (atomic_compare_exchange_strong(l, &c, 1))
		return;
	/* Critical sections are a few list operations: spin briefly first. */
	for (spin = 0; spin < 100; spin++) {
		gr_relax();
		c = 0;
		if (atomic_load_explicit(l, memory_order_relaxed) == 0 &&
		    atomic_compare_exchange_strong(l, &c, 1))
			return;
	}
	if (c != 2)
		c = atomic_exchange(l, 2);
	while (c != 0) {
		gr_futex_wait(l, 2, -1);
		c = atomic_exchange(l, 2);
	}
}

void gr_unlock(_Atomic uint32_t *l)
{
	if (atomic_exchange(l, 0) == 2)
		gr_futex_wake(l, 1);
}

void *gr_mmap(void *addr, size_t len, int prot, int flags)
{
	long r;

#if defined(__i386__)
	r = gr_syscall(SYS_mmap2, (long)addr, (long)len, prot, flags, -1, 0);
#else
	r = gr_syscall(SYS_mmap, (long)addr, (long)len, prot, flags, -1, 0);
#endif
	if ((unsigned long)r > -4096UL)
		return NULL;
	return (void *)r;
}

int gr_munmap(void *addr, size_t len)
{
	return gr_sys2(SYS_munmap, addr, len);
}

int gr_mprotect(void *addr, size_t len, int prot)
{
	return gr_sys3(SYS_mprotect, addr, len, prot);
}
