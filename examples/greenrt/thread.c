// SPDX-License-Identifier: GPL-2.0
/*
 * Worker threads on cached stacks: libstackres's thread-stack cache
 * (sr_tcache), raw clone(2) threads retired with exit_free(2) (or, on a
 * kernel without it, the clear_child_tid store), each with an alternate
 * signal stack carved off its stack.  A stack is handed out again only
 * after the kernel's store says its last thread is gone.
 */
#include "internal.h"

int gr_exit_free_available(void)
{
	return sr_exit_free_available();
}

/* A context of their own: gr_committed() counts the coroutine stacks only. */
static int tcache(void)
{
	int r;

	if (gr_rt.tcache)
		return 0;
	r = sr_ctx_create(SR_TIER_BEST, 0, &gr_rt.tctx);
	if (!r)
		r = sr_tcache_create(gr_rt.tctx, GR_TSTACK_SIZE, 0, NULL, SR_TCACHE_ALTSTACK,
				     &gr_rt.tcache);
	return r;
}

int gr_thread_spawn(int (*fn)(void *), void *arg, struct sr_tstack **ts_out)
{
	int r = tcache();

	return r ? r : sr_tcache_spawn(gr_rt.tcache, fn, arg, ts_out);
}

void gr_threads_wait_all(void)
{
	if (gr_rt.tcache)
		sr_tcache_wait_idle(gr_rt.tcache);
}

void gr_threads_destroy(void)
{
	if (gr_rt.tcache && !sr_tcache_destroy(gr_rt.tcache))
		gr_rt.tcache = NULL;
	if (!gr_rt.tcache && gr_rt.tctx && !sr_ctx_destroy(gr_rt.tctx))
		gr_rt.tctx = NULL;
}

void gr_stats_thread(struct gr_stats *s)
{
	struct sr_tcache_stats t = { 0 };

	if (gr_rt.tcache)
		sr_tcache_stats(gr_rt.tcache, &t);
	s->threads_started = t.spawned;
	s->thread_stacks_created = t.created;
	s->thread_stacks_reused = t.reused;
	s->exit_free_waits = t.waits;
}
