/* SPDX-License-Identifier: MIT */
/*
 * Raw system calls and a futex lock.
 *
 * The fault paths (classification, the SIGSEGV handler) and a thread's exit
 * from its cached stack run in signal handlers or in threads made with a raw
 * clone(2), which have no libc thread state of their own: errno there would
 * be another thread's.  So those paths make system calls without libc, and
 * get -errno back instead of touching errno.
 */
#ifndef SR_SYS_H
#define SR_SYS_H

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/futex.h>

/* Up to four arguments; returns the result or -errno. */
static inline long sr_sys(long nr, long a, long b, long c, long d)
{
#if defined(__x86_64__) && !defined(__ILP32__)
	register long r10 __asm__("r10") = d;
	long ret;

	__asm__ volatile ("syscall"
			  : "=a" (ret)
			  : "a" (nr), "D" (a), "S" (b), "d" (c), "r" (r10)
			  : "rcx", "r11", "memory");
	return ret;
#elif defined(__i386__)
	long ret;

	__asm__ volatile ("int $0x80"
			  : "=a" (ret)
			  : "a" (nr), "b" (a), "c" (b), "d" (c), "S" (d)
			  : "memory");
	return ret;
#else
	int e = errno;
	long ret = syscall(nr, a, b, c, d);

	if (ret == -1)
		ret = -errno;
	errno = e;
	return ret;
#endif
}

#define sr_sys0(n)		sr_sys((n), 0, 0, 0, 0)
#define sr_sys1(n, a)		sr_sys((n), (long)(a), 0, 0, 0)
#define sr_sys2(n, a, b)	sr_sys((n), (long)(a), (long)(b), 0, 0)
#define sr_sys3(n, a, b, c)	sr_sys((n), (long)(a), (long)(b), (long)(c), 0)
#define sr_sys4(n, a, b, c, d)	sr_sys((n), (long)(a), (long)(b), (long)(c), (long)(d))

/*
 * The timeout of SYS_futex: two longs on x86_64 and i386 alike (struct
 * __kernel_old_timespec), whatever time_t the libc was built with.
 */
struct sr_kts {
	long tv_sec;
	long tv_nsec;
};

static inline long sr_futex_wait(_Atomic uint32_t *w, uint32_t val, int private_,
				 const struct sr_kts *ts)
{
	return sr_sys4(SYS_futex, w, private_ ? FUTEX_WAIT_PRIVATE : FUTEX_WAIT,
		       val, ts);
}

static inline long sr_futex_wake(_Atomic uint32_t *w, int n, int private_)
{
	return sr_sys3(SYS_futex, w, private_ ? FUTEX_WAKE_PRIVATE : FUTEX_WAKE, n);
}

/* Three states: 0 free, 1 locked, 2 locked with waiters.  Never in a handler. */
static inline void sr_lock(_Atomic uint32_t *l)
{
	uint32_t c = 0;

	if (atomic_compare_exchange_strong(l, &c, 1))
		return;
	if (c != 2)
		c = atomic_exchange(l, 2);
	while (c != 0) {
		sr_futex_wait(l, 2, 1, NULL);
		c = atomic_exchange(l, 2);
	}
}

static inline void sr_unlock(_Atomic uint32_t *l)
{
	if (atomic_exchange(l, 0) == 2)
		sr_futex_wake(l, 1, 1);
}

#endif /* SR_SYS_H */
