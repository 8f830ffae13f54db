/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * exit_free(2): exit the calling thread, then store a word.
 *
 *	long syscall(__NR_exit_free, int status, void *addr,
 *		     unsigned long val, unsigned int flags);
 *
 * The flag block is identical to the kernel's <linux/exit_free.h> (same
 * include guard, so either copy may come first).  The system call number is
 * a fallback for libc headers that predate it.
 *
 * Warning: 463 is this kernel series' number only.  Mainline Linux 6.13 and
 * later use 463 for setxattrat(); calling it there does something else
 * entirely.  Use exit_free() only on kernels that carry the series.
 */
#ifndef _UAPI_LINUX_EXIT_FREE_H
#define _UAPI_LINUX_EXIT_FREE_H

/*
 * Without EXIT_FREE_U32 the store is a native unsigned long (32 bits for
 * 32-bit and compat tasks).
 */
#define EXIT_FREE_U32		(1U << 0) /* store a __u32 */
#define EXIT_FREE_WAKE		(1U << 1) /* FUTEX_WAKE all waiters on addr */
#define EXIT_FREE_PRIVATE	(1U << 2) /* ... with FUTEX_PRIVATE_FLAG */

#endif /* _UAPI_LINUX_EXIT_FREE_H */

/*
 * Outside the guard on purpose: the kernel's copy of this header does not
 * define the number.  x86_64 and i386 (also for ia32 tasks) only; x32 would
 * need __X32_SYSCALL_BIT and is left to the libc.
 */
#ifndef __NR_exit_free
#if defined(__x86_64__) && !defined(__ILP32__)
#define __NR_exit_free 463
#elif defined(__i386__)
#define __NR_exit_free 463
#endif
#endif
