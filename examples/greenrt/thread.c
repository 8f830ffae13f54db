// SPDX-License-Identifier: GPL-2.0
/*
 * Worker threads: raw clone(2) on stacks from a cache, retired with
 * exit_free(2).
 *
 * A thread cannot give its own stack back while it still runs on it.  Here
 * the exiting thread puts its stack on the cache list first and then calls
 * exit_free(EXIT_FREE_U32 | EXIT_FREE_WAKE | EXIT_FREE_PRIVATE) on the
 * stack's busy word: the kernel stores 0 there after the thread is done with
 * user memory (clear_child_tid, robust list, rseq) and wakes the waiters.  The
 * allocator may take the stack off the list at once, but futex-waits on the
 * busy word before a new thread runs on it: no munmap, no trampoline, no
 * polling.
 */
#include <errno.h>
#include <linux/exit_free.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>

#include "internal.h"

#ifndef MAP_STACK
#define MAP_STACK 0x20000
#endif

/* Lives at the top of its own stack mapping; the thread's stack is below it. */
struct gr_tstack {
	_Atomic uint32_t busy;		/* exit_free word: 1 while a thread owns it */
	_Atomic uint32_t ctid;		/* CLONE_CHILD_CLEARTID word */
	struct gr_tstack *next;		/* free list */
	struct gr_tstack *all;		/* every stack ever made */
	char *base;			/* lowest usable byte, above the guard */
	size_t size;			/* usable bytes below this block */
	void (*fn)(void *);
	void *arg;
} __attribute__((aligned(64)));

static _Atomic uint32_t ts_lock;
static struct gr_tstack *ts_free, *ts_all;
static _Atomic uint64_t ts_created, ts_reused, ts_waits, ts_started;

void (*gr_thread_exit_hook)(struct gr_tstack *ts);

int gr_exit_free_available(void)
{
	/*
	 * Three calls that exit_free rejects before exiting, each with its own
	 * errno.  Other kernels may have another system call at this number
	 * (mainline 6.13+: setxattrat), so one EINVAL proves nothing; these
	 * arguments are invalid for that one as well, whatever it answers.
	 */
	if (gr_sys4(__NR_exit_free, 0, 0, 0, 0x80000000u) != -EINVAL)
		return 0;
	if (gr_sys4(__NR_exit_free, 0, 0, 0, EXIT_FREE_U32) != -EINVAL)
		return 0;
	/* aligned for a 32-bit store, never mapped: EFAULT from validation */
	return gr_sys4(__NR_exit_free, 0, 4, 0, EXIT_FREE_U32) == -EFAULT;
}

void *gr_tstack_base(struct gr_tstack *ts)
{
	return ts->base;
}

size_t gr_tstack_size(struct gr_tstack *ts)
{
	return ts->size;
}

uint32_t *gr_tstack_ctid(struct gr_tstack *ts)
{
	return (uint32_t *)&ts->ctid;
}

static struct gr_tstack *tstack_new(void)
{
	size_t total = GR_PAGE + GR_TSTACK_SIZE;
	char *m = gr_mmap(NULL, total, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK);
	struct gr_tstack *ts;

	if (!m)
		return NULL;
	if (gr_mprotect(m, GR_PAGE, PROT_NONE)) {
		gr_munmap(m, total);
		return NULL;
	}
	ts = (struct gr_tstack *)(m + total - sizeof(*ts));
	ts->base = m + GR_PAGE;
	ts->size = (char *)ts - ts->base;
	atomic_store(&ts->busy, 0);
	gr_lock(&ts_lock);
	ts->all = ts_all;
	ts_all = ts;
	gr_unlock(&ts_lock);
	gr_stat_inc(&ts_created);
	return ts;
}

struct gr_tstack *gr_tstack_get(void)
{
	struct gr_tstack *ts;
	uint32_t v;

	gr_lock(&ts_lock);
	ts = ts_free;
	if (ts)
		ts_free = ts->next;
	gr_unlock(&ts_lock);
	if (!ts)
		return tstack_new();
	gr_stat_inc(&ts_reused);
	/*
	 * Its last thread queued it before exiting and may still run on it:
	 * sleep until exit_free's store says it is gone for good.
	 */
	v = atomic_load(&ts->busy);
	if (v) {
		gr_stat_inc(&ts_waits);
		while ((v = atomic_load(&ts->busy)) != 0)
			gr_futex_wait(&ts->busy, v, -1);
	}
	return ts;
}

void gr_tstack_put(struct gr_tstack *ts)
{
	gr_lock(&ts_lock);
	ts->next = ts_free;
	ts_free = ts;
	gr_unlock(&ts_lock);
}

static __attribute__((noreturn)) void thread_exit(struct gr_tstack *ts)
{
	gr_tstack_put(ts);
	if (gr_thread_exit_hook)
		gr_thread_exit_hook(ts);
	gr_sys4(__NR_exit_free, 0, &ts->busy, 0,
		EXIT_FREE_U32 | EXIT_FREE_WAKE | EXIT_FREE_PRIVATE);
	/* Not reached: gr_thread_spawn() is only used once exit_free probed fine. */
	for (;;)
		gr_sys1(SYS_exit, 127);
}

static void thread_entry(void *arg)
{
	struct gr_tstack *ts = arg;

	ts->fn(ts->arg);
	thread_exit(ts);
}

int gr_thread_spawn(void (*fn)(void *), void *arg, struct gr_tstack **ts_out)
{
	const unsigned long flags = CLONE_VM | CLONE_FS | CLONE_FILES |
		CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |
		CLONE_CHILD_CLEARTID;
	struct gr_tstack *ts = gr_tstack_get();
	long tid;

	if (!ts)
		return -ENOMEM;
	ts->fn = fn;
	ts->arg = arg;
	atomic_store(&ts->busy, 1);
	atomic_store(&ts->ctid, 1);
	if (ts_out)
		*ts_out = ts;
	tid = gr_raw_clone(flags, ts, thread_entry, ts, (uint32_t *)&ts->ctid);
	if (tid < 0) {
		atomic_store(&ts->busy, 0);
		gr_tstack_put(ts);
		return tid;
	}
	gr_stat_inc(&ts_started);
	return tid;
}

void gr_thread_wait(struct gr_tstack *ts)
{
	uint32_t v;

	while ((v = atomic_load(&ts->busy)) != 0)
		gr_futex_wait(&ts->busy, v, -1);
}

void gr_threads_wait_all(void)
{
	struct gr_tstack *ts;

	gr_lock(&ts_lock);
	ts = ts_all;
	gr_unlock(&ts_lock);
	for (; ts; ts = ts->all)
		gr_thread_wait(ts);
}

void gr_stats_thread(struct gr_stats *s)
{
	s->threads_started = ts_started;
	s->thread_stacks_created = ts_created;
	s->thread_stacks_reused = ts_reused;
	s->exit_free_waits = ts_waits;
}
