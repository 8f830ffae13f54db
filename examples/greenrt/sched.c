// SPDX-License-Identifier: GPL-2.0
/*
 * The M:N scheduler: coroutines, the run queue, and the worker loop.
 *
 * Each worker runs a loop on its own thread stack: take a ready coroutine,
 * switch to it, and when it switches back do what it asked (yield, park,
 * exit) or what the SIGSEGV handler decided (killed).  Park/unpark use a
 * permit, so an unpark that races with a park is never lost; the manager pins
 * a parked coroutine (PARKED -> TRIMMING) while it trims its stack so that no
 * worker resumes it in the middle of a TRIM.
 *
 * There is no thread-local storage here (raw clone threads share libc's):
 * a coroutine finds itself from its stack pointer, because every stack is a
 * stack_max-aligned block that gr_stack_of() maps to its gr_stack.
 */
#include <errno.h>
#include <limits.h>
#include <sys/mman.h>

#include "internal.h"

struct gr_rt gr_rt = { .efd = -1 };

/* -------- coroutine structures: a free list refilled by the page -------- */

static struct gr_coro *coro_alloc(void)
{
	struct gr_coro *c;

	gr_lock(&gr_rt.coro_lock);
	c = gr_rt.coro_free;
	if (!c) {
		size_t sz = 64 * 1024, i, n = sz / sizeof(*c);
		struct gr_coro *slab = gr_mmap(NULL, sz, PROT_READ | PROT_WRITE,
					       MAP_PRIVATE | MAP_ANONYMOUS);

		if (!slab) {
			gr_unlock(&gr_rt.coro_lock);
			return NULL;
		}
		/* Never unmapped: the manager may read a stale gr_coro. */
		for (i = 1; i < n; i++) {
			slab[i].next = gr_rt.coro_free;
			gr_rt.coro_free = &slab[i];
		}
		c = &slab[0];
	} else {
		gr_rt.coro_free = c->next;
	}
	gr_unlock(&gr_rt.coro_lock);
	return c;
}

static void coro_free(struct gr_coro *c)
{
	gr_lock(&gr_rt.coro_lock);
	c->next = gr_rt.coro_free;
	gr_rt.coro_free = c;
	gr_unlock(&gr_rt.coro_lock);
}

/* -------- run queue -------- */

static void rq_push(struct gr_coro *c)
{
	c->next = NULL;
	gr_lock(&gr_rt.rq_lock);
	if (gr_rt.rq_tail)
		gr_rt.rq_tail->next = c;
	else
		gr_rt.rq_head = c;
	gr_rt.rq_tail = c;
	gr_unlock(&gr_rt.rq_lock);
	atomic_fetch_add(&gr_rt.rq_seq, 1);
	if (atomic_load(&gr_rt.rq_sleepers))
		gr_futex_wake(&gr_rt.rq_seq, 1);
}

static struct gr_coro *rq_pop(void)
{
	struct gr_coro *c;

	if (!atomic_load_explicit((_Atomic(struct gr_coro *) *)&gr_rt.rq_head,
				  memory_order_relaxed))
		return NULL;
	gr_lock(&gr_rt.rq_lock);
	c = gr_rt.rq_head;
	if (c) {
		gr_rt.rq_head = c->next;
		if (!gr_rt.rq_head)
			gr_rt.rq_tail = NULL;
	}
	gr_unlock(&gr_rt.rq_lock);
	return c;
}

static void wake_all_workers(void)
{
	atomic_fetch_add(&gr_rt.rq_seq, 1);
	gr_futex_wake(&gr_rt.rq_seq, INT_MAX);
}

/* -------- context setup and identity -------- */

void gr_ctx_init(struct gr_ctx *ctx, void *top, void *coro)
{
	uintptr_t t = (uintptr_t)top & ~(uintptr_t)15;

	/*
	 * A frame as gr_switch() leaves it, returning into the trampoline with
	 * the coroutine in a callee-saved register; 16 bytes of padding above
	 * keep the trampoline's call 16-byte aligned.
	 */
#if defined(__x86_64__)
	uint64_t *f = (uint64_t *)(t - 16 - 8 * 8);

	f[0] = 0x1f80 | (0x037fULL << 32);	/* default MXCSR, x87 CW */
	f[1] = f[2] = f[3] = 0;			/* r15 r14 r13 */
	f[4] = (uintptr_t)coro;			/* r12 */
	f[5] = f[6] = 0;			/* rbx rbp */
	f[7] = (uintptr_t)gr_coro_trampoline;
#else
	uint32_t *f = (uint32_t *)(t - 16 - 6 * 4);

	f[0] = 0x037f;				/* x87 CW */
	f[1] = f[2] = 0;			/* edi esi */
	f[3] = (uintptr_t)coro;			/* ebx */
	f[4] = 0;				/* ebp */
	f[5] = (uintptr_t)gr_coro_trampoline;
#endif
	ctx->sp = f;
}

struct gr_coro *gr_self(void)
{
	char here;

	return atomic_load(&gr_stack_of((uintptr_t)&here)->owner);
}

/* True when called on a coroutine stack. */
static bool on_coroutine(void)
{
	char here;

	return gr_stack_of((uintptr_t)&here);
}

unsigned long gr_coro_seq(const struct gr_coro *c)
{
	return c->seq;
}

void gr_coro_set_name(struct gr_coro *c, const char *name)
{
	c->name = name;
}

/* -------- spawn, exit, join -------- */

static struct gr_coro *spawn(gr_fn fn, void *arg, bool detached)
{
	struct gr_coro *c = coro_alloc();
	struct gr_stack *st;

	if (!c)
		return NULL;
	st = gr_stack_get();
	if (!st) {
		coro_free(c);
		return NULL;
	}
	c->fn = fn;
	c->arg = arg;
	c->stack = st;
	c->worker = NULL;
	c->next = c->gnext = NULL;
	c->arrive = NULL;
	atomic_store(&c->permit, 0);
	atomic_store(&c->kill, 0);
	atomic_store(&c->done, 0);
	atomic_store(&c->joiner, NULL);
	/* A fresh generation: the manager must not match a previous user's. */
	c->park_gen = c->trim_gen = c->seen_gen = c->park_gen + 0x10000;
	c->detached = detached;
	c->status = GR_OK;
	c->fault_addr = 0;
	c->fault_committed = 0;
	c->fault_tid = 0;
	c->name = NULL;
	c->seq = atomic_fetch_add(&gr_rt.next_seq, 1) + 1;
	gr_ctx_init(&c->ctx, (void *)gr_stack_top(st), c);
	atomic_store(&st->owner, c);
	atomic_fetch_add(&gr_rt.live, 1);
	gr_stat_inc(&gr_rt.st_spawned);
	atomic_store(&c->state, GR_S_READY);
	rq_push(c);
	return c;
}

struct gr_coro *gr_spawn(gr_fn fn, void *arg)
{
	return spawn(fn, arg, false);
}

int gr_go(gr_fn fn, void *arg)
{
	return spawn(fn, arg, true) ? 0 : -ENOMEM;
}

/* fault_* were set by the SIGSEGV handler or, for a kernel access, the manager. */
static void note_kill(struct gr_coro *c)
{
	uint32_t first = 0;

	gr_stat_inc(&gr_rt.st_killed);
	gr_kill_note(c);
	if (c->status == GR_KILLED_OVERFLOW &&
	    atomic_compare_exchange_strong(&gr_rt.overflow_seen, &first, 1)) {
		gr_rt.overflow_seq = c->seq;
		gr_rt.overflow_addr = c->fault_addr;
		gr_rt.overflow_stack_start = c->stack->start;
		gr_rt.overflow_committed = c->fault_committed;
	}
}

/* On the worker, after the coroutine's last switch (or before its first). */
static void finish(struct gr_coro *c, int status)
{
	struct gr_coro *j;

	c->status = status;
	if (status == GR_OK)
		gr_stat_inc(&gr_rt.st_finished);
	else
		note_kill(c);
	gr_stack_put(c->stack);
	c->stack = NULL;
	atomic_store(&c->state, GR_S_DEAD);
	if (c->detached) {
		coro_free(c);
	} else {
		/*
		 * done = 1 before looking for a joiner (it stores joiner
		 * before looking at done); done = 2 is the last touch of c,
		 * after which the joiner may free it.
		 */
		atomic_store(&c->done, 1);
		j = atomic_exchange(&c->joiner, NULL);
		atomic_store(&c->done, 2);
		gr_futex_wake(&c->done, INT_MAX);
		if (j)
			gr_unpark(j);
	}
	if (atomic_fetch_sub(&gr_rt.live, 1) == 1) {
		atomic_fetch_add(&gr_rt.live_seq, 1);
		gr_futex_wake(&gr_rt.live_seq, INT_MAX);
		if (atomic_load(&gr_rt.stopping))
			wake_all_workers();
	}
}

/* Entered from gr_coro_trampoline on the coroutine's fresh stack. */
__attribute__((noreturn, used)) void gr_coro_main(struct gr_coro *c)
{
	c->fn(c->arg);
	c->worker->pending = GR_P_EXIT;
	gr_switch(&c->ctx, &c->worker->sched_ctx);
	__builtin_unreachable();
}

int gr_join(struct gr_coro *c)
{
	uint32_t v;
	int status;

	if (on_coroutine()) {
		atomic_store(&c->joiner, gr_self());
		while (atomic_load(&c->done) != 2)
			gr_park();
	} else {
		while ((v = atomic_load(&c->done)) != 2)
			gr_futex_wait(&c->done, v, -1);
	}
	status = c->status;
	coro_free(c);
	return status;
}

/* -------- yield, park, unpark -------- */

static void switch_out(int what)
{
	struct gr_coro *c = gr_self();
	struct gr_worker *w = c->worker;

	w->pending = what;
	gr_switch(&c->ctx, &w->sched_ctx);
}

void gr_yield(void)
{
	switch_out(GR_P_YIELD);
}

void gr_park(void)
{
	switch_out(GR_P_PARK);
}

void gr_try_wake(struct gr_coro *c)
{
	uint32_t s = GR_S_PARKED;

	if (atomic_compare_exchange_strong(&c->state, &s, GR_S_READY)) {
		atomic_store(&c->permit, 0);
		rq_push(c);
	}
}

void gr_unpark(struct gr_coro *c)
{
	atomic_store(&c->permit, 1);
	gr_try_wake(c);
}

/* -------- the worker loop -------- */

static void after_switch(struct gr_worker *w, struct gr_coro *c)
{
	uint32_t kill = atomic_load(&c->kill);
	struct gr_gate *gate;

	switch (w->pending) {
	case GR_P_YIELD:
		if (kill) {
			finish(c, kill);
			break;
		}
		atomic_store(&c->state, GR_S_READY);
		rq_push(c);
		break;
	case GR_P_PARK:
		/* Read before c is published: once parked it may run elsewhere. */
		gate = c->arrive;
		c->arrive = NULL;
		if (kill) {
			finish(c, kill);
			break;
		}
		c->park_gen++;
		atomic_fetch_add_explicit(&gr_rt.trim_events, 1, memory_order_relaxed);
		if (atomic_exchange(&c->permit, 0)) {
			atomic_store(&c->state, GR_S_READY);
			rq_push(c);
		} else {
			atomic_store(&c->state, GR_S_PARKED);
			/* An unpark between the exchange and the store: */
			if (atomic_load(&c->permit))
				gr_try_wake(c);
		}
		if (gate)
			gr_gate_arrive(gate);
		break;
	case GR_P_EXIT:
		finish(c, GR_OK);
		break;
	case GR_P_KILLED:
		finish(c, c->status);
		break;
	}
}

void gr_worker_loop(struct gr_worker *w)
{
	struct gr_coro *c;
	uint32_t seq, kill;

	for (;;) {
		seq = atomic_load(&gr_rt.rq_seq);
		c = rq_pop();
		if (!c) {
			if (atomic_load(&gr_rt.stopping) && !atomic_load(&gr_rt.live))
				return;
			atomic_fetch_add(&gr_rt.rq_sleepers, 1);
			gr_futex_wait(&gr_rt.rq_seq, seq, -1);
			atomic_fetch_sub(&gr_rt.rq_sleepers, 1);
			continue;
		}
		kill = atomic_load(&c->kill);
		if (kill) {
			/* Killed by the manager while it waited: never resumed. */
			finish(c, kill);
			continue;
		}
		c->worker = w;
		w->current = c;
		atomic_store(&c->state, GR_S_RUNNING);
		w->switches++;
		gr_switch(&w->sched_ctx, &c->ctx);
		w->current = NULL;
		after_switch(w, c);
	}
}

/* -------- waiting from threads -------- */

void gr_wait_idle(void)
{
	uint32_t s;

	for (;;) {
		s = atomic_load(&gr_rt.live_seq);
		if (!atomic_load(&gr_rt.live))
			return;
		gr_futex_wait(&gr_rt.live_seq, s, 100);
	}
}

void gr_sched_stop(void)
{
	atomic_store(&gr_rt.stopping, 1);
	wake_all_workers();
}
