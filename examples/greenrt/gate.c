// SPDX-License-Identifier: GPL-2.0
/*
 * Gates: coroutines park at a gate until a thread opens it; the thread can
 * wait until a number of coroutines have arrived (or been killed on the way).
 */
#include <limits.h>

#include "internal.h"

#define G_LOCK(g)	((_Atomic uint32_t *)&(g)->lock)
#define G_OPEN(g)	((_Atomic uint32_t *)&(g)->open)
#define G_ARRIVED(g)	((_Atomic uint32_t *)&(g)->arrived)
#define G_WANT(g)	((_Atomic uint32_t *)&(g)->want)

void gr_gate_init(struct gr_gate *g)
{
	g->lock = 0;
	g->open = 0;
	g->arrived = 0;
	g->want = UINT32_MAX;
	g->waiters = NULL;
}

void gr_gate_wait(struct gr_gate *g)
{
	struct gr_coro *self = gr_self();
	bool open;

	gr_lock(G_LOCK(g));
	open = atomic_load(G_OPEN(g));
	if (!open) {
		self->gnext = g->waiters;
		g->waiters = self;
	}
	gr_unlock(G_LOCK(g));
	if (open) {
		gr_gate_arrive(g);
		return;
	}
	/*
	 * Counted by the worker once this coroutine is parked, not before:
	 * whoever waits for the arrivals (to trim parked stacks, say) must
	 * find every one of them parked.
	 */
	self->arrive = g;
	while (!atomic_load(G_OPEN(g)))
		gr_park();
}

void gr_gate_arrive(struct gr_gate *g)
{
	if (atomic_fetch_add(G_ARRIVED(g), 1) + 1 >= atomic_load(G_WANT(g)))
		gr_futex_wake(G_ARRIVED(g), INT_MAX);
}

void gr_gate_open(struct gr_gate *g)
{
	struct gr_coro *c, *next;

	gr_lock(G_LOCK(g));
	atomic_store(G_OPEN(g), 1);
	c = g->waiters;
	g->waiters = NULL;
	gr_unlock(G_LOCK(g));
	for (; c; c = next) {
		next = c->gnext;	/* c may run and end once unparked */
		gr_unpark(c);
	}
}

uint32_t gr_gate_wait_arrived(struct gr_gate *g, uint32_t n, uint64_t killed_base)
{
	uint32_t a;

	atomic_store(G_WANT(g), n);
	for (;;) {
		a = atomic_load(G_ARRIVED(g));
		if (a + (atomic_load(&gr_rt.st_killed) - killed_base) >= n)
			return a;
		/* A kill does not wake us: look again every few milliseconds. */
		gr_futex_wait(G_ARRIVED(g), a, 5);
	}
}
