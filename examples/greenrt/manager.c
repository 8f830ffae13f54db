// SPDX-License-Identifier: GPL-2.0
/*
 * The manager thread: reads stack fault upcalls from the stackres fd and
 * trims stacks.
 *
 * OVERFLOW: a coroutine hit its guard page.  A user-mode hit has already been
 * stopped by the SIGSEGV handler (which leaves its mark in the gr_stack); the
 * manager names it.  A hit by the kernel (a system call writing into the
 * guard got EFAULT, no signal) is ended here: the owner is asked to die at its
 * next switch.  The record is queued before the signal is delivered, so an
 * unmatched record waits one pass for the handler before it counts as a
 * kernel-mode hit.
 * WATERMARK: logged.  FAILED: like OVERFLOW.  LOST: counted.
 * Trimming: each parked coroutine's stack is trimmed once per parking down to
 * its saved stack pointer (minus trim_keep); cached stacks back to the initial
 * commit.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/stackres.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define MAX_DEFERRED 16
static struct stackres_event deferred[MAX_DEFERRED];
static unsigned int ndeferred;

static void report_kill(const char *what, struct stackres_event *ev,
			unsigned long seq, const char *name)
{
	if (gr_rt.cfg.verbose < 1)
		return;
	fprintf(stderr, "greenrt: %s: coroutine #%lu%s%s%s hit the guard page of its %zu KiB stack "
		"at %#" PRIx64 " (thread %u, %" PRIu64 " KiB committed): killed; the other "
		"coroutines keep running\n", what, seq, name ? " (" : "", name ? name : "",
		name ? ")" : "", gr_rt.cfg.stack_max >> 10, (uint64_t)ev->addr, ev->tid,
		(uint64_t)ev->committed >> 10);
}

/* Returns false to keep the record for the next pass. */
static bool handle_kill_record(struct stackres_event *ev, bool last_chance)
{
	struct gr_stack *st = gr_stack_by_id(ev->id);
	const char *what = ev->type == STACKRES_EV_OVERFLOW ? "OVERFLOW" : "FAILED growth";
	struct gr_coro *c;

	if (!st)
		return true;
	if (atomic_load(&st->fault_mark) && st->fault_addr == ev->addr) {
		atomic_store(&st->fault_mark, 0);
		report_kill(what, ev, st->fault_seq, NULL);
		return true;
	}
	if (!last_chance)
		return false;
	/* Kernel-mode hit: the coroutine got EFAULT and is still running. */
	c = atomic_load(&st->owner);
	if (!c)
		return true;
	atomic_store(&c->kill, ev->type == STACKRES_EV_OVERFLOW ? GR_KILLED_FAULT :
		     GR_KILLED_GROWFAIL);
	gr_unpark(c);
	report_kill(what, ev, c->seq, c->name);
	return true;
}

static void read_events(void)
{
	struct stackres_event evs[64];
	unsigned int i, n;
	ssize_t r;

	/* Records held back from the previous pass get their last chance. */
	n = ndeferred;
	ndeferred = 0;
	for (i = 0; i < n; i++)
		handle_kill_record(&deferred[i], true);

	while ((r = read(gr_rt.srfd, evs, sizeof(evs))) > 0) {
		n = r / sizeof(evs[0]);
		for (i = 0; i < n; i++) {
			struct stackres_event *ev = &evs[i];

			switch (ev->type) {
			case STACKRES_EV_OVERFLOW:
			case STACKRES_EV_FAILED:
				gr_stat_inc(ev->type == STACKRES_EV_OVERFLOW ?
					    &gr_rt.st_ev_overflow : &gr_rt.st_ev_failed);
				if (!handle_kill_record(ev, false)) {
					if (ndeferred < MAX_DEFERRED)
						deferred[ndeferred++] = *ev;
					else
						handle_kill_record(ev, true);
				}
				break;
			case STACKRES_EV_WATERMARK:
				gr_stat_inc(&gr_rt.st_ev_watermark);
				if (gr_rt.cfg.verbose >= 2 &&
				    atomic_fetch_add(&gr_rt.wm_logged, 1) <
				    gr_rt.cfg.watermark_log_max) {
					struct gr_stack *st = gr_stack_by_id(ev->id);
					struct gr_coro *c = st ? atomic_load(&st->owner) : NULL;

					fprintf(stderr, "greenrt: WATERMARK: coroutine #%lu's stack reached "
						"%" PRIu64 " KiB committed (watermark %zu KiB)\n",
						c ? c->seq : 0UL, (uint64_t)ev->committed >> 10,
						gr_rt.cfg.watermark >> 10);
				}
				break;
			case STACKRES_EV_LOST:
				atomic_fetch_add(&gr_rt.st_ev_lost, ev->committed);
				break;
			case STACKRES_EV_GROW:
				gr_stat_inc(&gr_rt.st_ev_grow);
				break;
			}
		}
	}
}

/*
 * A coroutine parked for less than one pass is likely to run again at once:
 * it is trimmed on the second pass that finds it parked (or at once when
 * gr_manager_sync() asks for all).
 */
static void trim_parked(bool all)
{
	uint32_t i, n = atomic_load(&gr_rt.nstacks);
	size_t keep = gr_rt.cfg.trim_keep;

	for (i = 0; i < n; i++) {
		struct gr_stack *st = gr_stack_at(i);
		struct gr_coro *c = atomic_load(&st->owner);
		uint32_t s = GR_S_PARKED;

		if (!c || atomic_load(&c->state) != GR_S_PARKED ||
		    c->trim_gen == c->park_gen)
			continue;
		if (!all && c->seen_gen != c->park_gen) {
			c->seen_gen = c->park_gen;
			continue;
		}
		if (!atomic_compare_exchange_strong(&c->state, &s, GR_S_TRIMMING))
			continue;
		/* Pinned now; c may have been reused for another stack before. */
		if (c->stack == st && atomic_load(&st->owner) == c) {
			uintptr_t sp = (uintptr_t)c->ctx.sp;

			if (gr_stack_trim_useful(st, sp, keep) &&
			    !gr_stack_trim(st, sp, keep)) {
				gr_stat_inc(&gr_rt.st_trims_parked);
				st->low_sp = sp;
			}
			c->trim_gen = c->park_gen;
		}
		atomic_store(&c->state, GR_S_PARKED);
		if (atomic_load(&c->permit))
			gr_try_wake(c);
	}
}

void gr_manager_pass(bool all)
{
	if (gr_rt.mode == GR_MODE_NATIVE)
		read_events();
	trim_parked(all);
	gr_stacks_trim_cached();
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

static void print_fallback_kill(void)
{
	static unsigned long reported;

	if (gr_rt.skind == GR_SK_STACKRES || !atomic_load(&gr_rt.overflow_seen) ||
	    reported == gr_rt.overflow_seq || gr_rt.cfg.verbose < 1)
		return;
	reported = gr_rt.overflow_seq;
	fprintf(stderr, "greenrt: OVERFLOW: coroutine #%lu hit the guard page of its %zu KiB "
		"stack at %#" PRIxPTR ": killed; the other coroutines keep running\n",
		gr_rt.overflow_seq, gr_rt.cfg.stack_max >> 10, gr_rt.overflow_addr);
}

static void *manager_main(void *arg)
{
	struct pollfd p[2];
	uint64_t next_sample = 0, t;
	uint32_t req;
	int n = 0;

	(void)arg;
	if (gr_rt.srfd >= 0)
		p[n++] = (struct pollfd){ .fd = gr_rt.srfd, .events = POLLIN };
	p[n++] = (struct pollfd){ .fd = gr_rt.efd, .events = POLLIN };
	while (!atomic_load(&gr_rt.mgr_stop)) {
		uint64_t v;

		poll(p, n, gr_rt.cfg.trim_interval_ms);
		if (read(gr_rt.efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			break;
		req = atomic_load(&gr_rt.mgr_req);
		gr_manager_pass(req != atomic_load(&gr_rt.mgr_done));
		print_fallback_kill();
		t = now_ms();
		if (t >= next_sample) {
			gr_committed();		/* samples the peak */
			next_sample = t + 250;
		}
		atomic_store(&gr_rt.mgr_done, req);
		gr_futex_wake(&gr_rt.mgr_done, 1 << 30);
	}
	return NULL;
}

void gr_manager_sync(void)
{
	uint32_t req = atomic_fetch_add(&gr_rt.mgr_req, 1) + 1, d;
	uint64_t one = 1;

	if (write(gr_rt.efd, &one, sizeof(one)) < 0)
		return;
	while ((int32_t)((d = atomic_load(&gr_rt.mgr_done)) - req) < 0)
		gr_futex_wait(&gr_rt.mgr_done, d, 100);
}

int gr_manager_start(void)
{
	pthread_t t;
	int r;

	atomic_store(&gr_rt.mgr_stop, 0);
	r = pthread_create(&t, NULL, manager_main, NULL);
	if (r)
		return -r;
	gr_rt.manager = (unsigned long)t;
	return 0;
}

void gr_manager_stop(void)
{
	uint64_t one = 1;

	atomic_store(&gr_rt.mgr_stop, 1);
	if (write(gr_rt.efd, &one, sizeof(one)) < 0)
		perror("greenrt: eventfd");
	pthread_join((pthread_t)gr_rt.manager, NULL);
}
