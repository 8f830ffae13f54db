// SPDX-License-Identifier: MIT
/*
 * A cache of thread stacks, recycled only once the kernel is done with them.
 *
 * A thread cannot give back the stack it runs on: even after its last
 * instruction the kernel still uses memory there (robust futex list, the
 * clear_child_tid word, a signal frame).  Each stack has a word, "busy",
 * at its top: 1 while a thread may run on it.  The exiting thread puts its
 * stack on the free list and then has the kernel store 0 in the word once
 * it is done with user memory:
 *
 *   exit_free(2)  exit_free(status, &busy, 0, U32 | WAKE | PRIVATE), on
 *                 kernels with the series, found by the documented probe
 *                 (a call that exit_free() fails with EINVAL, Linux 6.12
 *                 with ENOSYS, and setxattrat(), which took number 463 in
 *                 mainline 6.13, with E2BIG);
 *   otherwise     set_tid_address(&busy) and exit: the kernel's
 *                 clear_child_tid store and wake, after the same last uses.
 *
 * A stack is handed out again only after its word was stored: sr_tcache_get()
 * prefers a free stack whose word is 0 and otherwise futex-waits on one (the
 * store is on its way: its thread has already called sr_tstack_exit()).  The
 * wait rechecks every 10 ms, so even a wake that went to the other kind of
 * futex (a failed exit_free() falls back to clear_child_tid) cannot hang it.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <linux/exit_free.h>

#include "internal.h"

struct sr_tstack {
	_Atomic uint32_t busy;		/* the word: 0 once the kernel is done */
	uint32_t magic;
	sr_tstack *next;		/* free list */
	sr_tstack *all;			/* every stack of the cache */
	sr_tcache *cache;
	sr_stack *stack;
	uintptr_t top;			/* the thread's initial stack pointer */
	uintptr_t alt;			/* its sigaltstack, or 0 */
	size_t alt_size;
	int (*fn)(void *);
	void *arg;
};

struct sr_tcache {
	sr_ctx *ctx;
	size_t size, guard, alt_size;
	void *user_data;
	unsigned int flags;
	int mode;
	_Atomic uint32_t lock;
	sr_tstack *free, *all;
	uint64_t created, reused, waits, spawned, out;	/* under lock */
};

#define TSTACK_MAGIC	0x53525453U

static _Atomic int exit_free_state = -1;	/* -1 unknown, -2 probing, 0, 1 */

SR_API int sr_exit_free_available(void)
{
	int v = atomic_load(&exit_free_state), unknown = -1;
	const char *env;

	if (v >= 0)
		return v;
	if (!atomic_compare_exchange_strong(&exit_free_state, &unknown, -2)) {
		while ((v = atomic_load(&exit_free_state)) < 0)
			sched_yield();
		return v;
	}
	v = 0;
	env = getenv("LIBSTACKRES_EXIT_FREE");
	if (!env || strcmp(env, "0")) {
#ifdef __NR_exit_free
		/*
		 * Never call 463 blindly: it is setxattrat() on Linux 6.13+.
		 * exit_free(): EINVAL (unknown flags; the 5th and 6th arguments
		 * are ignored).  6.12 without it: ENOSYS.  setxattrat(): E2BIG
		 * (its 6th argument, a size, is checked first).
		 */
		int e = errno;
		long r = syscall(__NR_exit_free, 0, NULL, 0, ~0U, 0, ~0UL);

		v = r == -1 && errno == EINVAL;
		errno = e;
#endif
	}
	atomic_store(&exit_free_state, v);
	return v;
}

SR_API int sr_tcache_create(sr_ctx *ctx, size_t size, size_t guard, void *user_data,
			    unsigned int flags, sr_tcache **cachep)
{
	sr_tcache *c;

	if (!ctx || !cachep || !size || size > SIZE_MAX / 4 || (flags & ~SR_TCACHE_ALTSTACK))
		return -EINVAL;
	c = sr_map_anon(sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->ctx = ctx;
	c->size = sr_page_up(ctx, size);
	c->guard = guard;
	c->alt_size = flags & SR_TCACHE_ALTSTACK ? SR_ALTSTACK_DEFAULT : 0;
	c->user_data = user_data;
	c->flags = flags;
	c->mode = sr_exit_free_available() ? SR_TCACHE_EXIT_FREE : SR_TCACHE_CLEARTID;
	sr_lock(&ctx->lock);
	ctx->ntcaches++;
	sr_unlock(&ctx->lock);
	*cachep = c;
	return 0;
}

SR_API int sr_tcache_mode(const sr_tcache *c)
{
	return c ? c->mode : -EINVAL;
}

static void wait_word(sr_tcache *c, sr_tstack *ts)
{
	static const struct sr_kts tick = { 0, 10 * 1000 * 1000 };
	uint32_t v;

	while ((v = atomic_load(&ts->busy)) != 0)
		sr_futex_wait(&ts->busy, v, c->mode == SR_TCACHE_EXIT_FREE, &tick);
}

static sr_tstack *tstack_new(sr_tcache *c, int *err)
{
	sr_ctx *ctx = c->ctx;
	size_t usable = c->size + c->alt_size + ctx->page;
	sr_tstack *ts;
	sr_stack *st;
	uintptr_t base;

	/* On stackres the top page (the word) and the altstack stay committed. */
	*err = sr_stack_make(ctx, usable, c->guard, c->alt_size + ctx->page + ctx->commit,
			     c->user_data, &st);
	if (*err)
		return NULL;
	base = (uintptr_t)sr_stack_base(st);
	ts = (sr_tstack *)(base + c->size + c->alt_size);
	memset(ts, 0, sizeof(*ts));
	ts->magic = TSTACK_MAGIC;
	ts->cache = c;
	ts->stack = st;
	ts->top = base + c->size;
	ts->alt = c->alt_size ? base + c->size : 0;
	ts->alt_size = c->alt_size;
	st->ts = ts;
	sr_lock(&c->lock);
	ts->all = c->all;
	c->all = ts;
	c->created++;
	sr_unlock(&c->lock);
	return ts;
}

SR_API int sr_tcache_get(sr_tcache *c, sr_tstack **tsp)
{
	sr_tstack *ts, **pp;
	int waited = 0, err = 0;

	if (!c || !tsp)
		return -EINVAL;
	sr_lock(&c->lock);
	for (pp = &c->free; (ts = *pp) != NULL; pp = &ts->next)
		if (atomic_load(&ts->busy) == 0)
			break;
	if (!ts && c->free) {
		/* Every free one is still being left: the oldest exit is nearest done. */
		for (pp = &c->free; (*pp)->next; pp = &(*pp)->next)
			;
		ts = *pp;
		waited = 1;
	}
	if (ts) {
		*pp = ts->next;
		c->reused++;
		c->waits += waited;
	}
	c->out++;
	sr_unlock(&c->lock);
	if (ts && waited)
		wait_word(c, ts);
	if (!ts)
		ts = tstack_new(c, &err);
	if (!ts) {
		sr_lock(&c->lock);
		c->out--;
		sr_unlock(&c->lock);
		return err;
	}
	ts->next = NULL;
	atomic_store(&ts->busy, 1);
	*tsp = ts;
	return 0;
}

SR_API void sr_tcache_put(sr_tstack *ts)
{
	sr_tcache *c = ts->cache;

	atomic_store(&ts->busy, 0);
	sr_lock(&c->lock);
	ts->next = c->free;
	c->free = ts;
	c->out--;
	sr_unlock(&c->lock);
}

SR_API void *sr_tstack_top(const sr_tstack *ts)
{
	return (void *)ts->top;
}

SR_API sr_stack *sr_tstack_stack(const sr_tstack *ts)
{
	return ts->stack;
}

/* Runs on ts's stack, maybe without libc thread state: raw calls only. */
SR_API void sr_tstack_exit(sr_tstack *ts, int status)
{
	sr_tcache *c = ts->cache;

	sr_lock(&c->lock);
	ts->next = c->free;
	c->free = ts;
	c->out--;
	sr_unlock(&c->lock);
#ifdef __NR_exit_free
	if (c->mode == SR_TCACHE_EXIT_FREE)
		sr_sys4(__NR_exit_free, status, &ts->busy, 0,
			EXIT_FREE_U32 | EXIT_FREE_WAKE | EXIT_FREE_PRIVATE);
	/* Returned: it failed.  The kernel's own store below still comes. */
#endif
	sr_sys1(SYS_set_tid_address, &ts->busy);
	for (;;)
		sr_sys1(SYS_exit, status);
}

static int trampoline(void *arg)
{
	sr_tstack *ts = arg;

	if (ts->alt) {
		stack_t ss;

		ss.ss_sp = (void *)ts->alt;
		ss.ss_size = ts->alt_size;
		ss.ss_flags = 0;
		sr_sys2(SYS_sigaltstack, &ss, NULL);
	}
	sr_tstack_exit(ts, ts->fn(ts->arg));
}

SR_API int sr_tcache_spawn(sr_tcache *c, int (*fn)(void *), void *arg, sr_tstack **tsp)
{
	const int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND |
		CLONE_THREAD | CLONE_SYSVSEM;
	sr_tstack *ts;
	int r, e = errno;

	if (!c || !fn)
		return -EINVAL;
	r = sr_tcache_get(c, &ts);
	if (r)
		return r;
	ts->fn = fn;
	ts->arg = arg;
	r = clone(trampoline, (void *)ts->top, flags, ts);
	if (r < 0) {
		r = -errno;
		errno = e;
		sr_tcache_put(ts);
		return r;
	}
	sr_lock(&c->lock);
	c->spawned++;
	sr_unlock(&c->lock);
	if (tsp)
		*tsp = ts;
	return r;
}

SR_API int sr_tcache_wait_idle(sr_tcache *c)
{
	sr_tstack *ts;

	if (!c)
		return -EINVAL;
	sr_lock(&c->lock);
	ts = c->all;
	sr_unlock(&c->lock);
	/* The list only grows at its head: walking from a snapshot is safe. */
	for (; ts; ts = ts->all)
		wait_word(c, ts);
	return 0;
}

SR_API int sr_tcache_destroy(sr_tcache *c)
{
	sr_ctx *ctx;
	sr_tstack *ts, *next;

	if (!c)
		return -EINVAL;
	sr_lock(&c->lock);
	if (c->out) {
		sr_unlock(&c->lock);
		return -EBUSY;
	}
	sr_unlock(&c->lock);
	ctx = c->ctx;
	for (ts = c->all; ts; ts = next) {
		sr_stack *st = ts->stack;

		wait_word(c, ts);
		next = ts->all;
		st->ts = NULL;
		sr_stack_unmake(st);
	}
	sr_lock(&ctx->lock);
	ctx->ntcaches--;
	sr_unlock(&ctx->lock);
	sr_unmap(c, sizeof(*c));
	return 0;
}

SR_API int sr_tcache_trim(sr_tcache *c, size_t keep)
{
	struct sr_trim t[64];
	sr_tstack *idle = NULL, *ts, **pp, *batch[64];
	unsigned int n;
	int done = 0, r;

	if (!c)
		return -EINVAL;
	/* Off the free list while trimmed, so that nobody starts on one. */
	sr_lock(&c->lock);
	for (pp = &c->free; (ts = *pp) != NULL;) {
		if (atomic_load(&ts->busy) == 0) {
			*pp = ts->next;
			ts->next = idle;
			idle = ts;
		} else {
			pp = &ts->next;
		}
	}
	sr_unlock(&c->lock);
	while (idle) {
		for (n = 0; idle && n < 64; n++) {
			ts = idle;
			idle = ts->next;
			batch[n] = ts;
			memset(&t[n], 0, sizeof(t[n]));
			t[n].stack = ts->stack;
			t[n].sp = (void *)ts->top;
			t[n].keep = keep;
		}
		r = sr_trim_batch(c->ctx, t, n);
		if (r > 0)
			done += r;
		sr_lock(&c->lock);
		while (n--) {
			batch[n]->next = c->free;
			c->free = batch[n];
		}
		sr_unlock(&c->lock);
	}
	return done;
}

SR_API int sr_tcache_stats(const sr_tcache *c, struct sr_tcache_stats *s)
{
	if (!c || !s)
		return -EINVAL;
	memset(s, 0, sizeof(*s));
	sr_lock((_Atomic uint32_t *)&c->lock);
	s->created = c->created;
	s->reused = c->reused;
	s->waits = c->waits;
	s->spawned = c->spawned;
	s->out = c->out;
	sr_unlock((_Atomic uint32_t *)&c->lock);
	return 0;
}
