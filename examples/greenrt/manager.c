// SPDX-License-Identifier: GPL-2.0
/*
 * The manager thread: reads the records (libstackres's event reader),
 * reports kills and trims stacks.
 *
 * Records carry the gr_stack (user_data) and who made the access (origin).
 * OVERFLOW or FAILED by the task in user mode: the SIGSEGV handler ends the
 * coroutine; only counted here.  By the kernel (a system call writing into
 * the guard got EFAULT, no signal): the owner is asked to die at a switch.  WATERMARK: logged.  LOST: counted.
 * Kills are reported from the workers' notes (gr_kill_note()), as the
 * workers cannot print.
 * Trimming: parked coroutines' stacks (down to the saved stack pointer minus
 * trim_keep) and cached stacks (back to the initial commit) are the
 * candidates of a budgeted trim (gr_config.trim_budget, sr_trim_budget()):
 * without a budget each is trimmed once per parking or use; with one,
 * nothing happens while the committed total is within it.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* Kills not yet reported: written by the workers, printed by the manager. */
struct kill_note {
	unsigned long seq;
	const char *name;
	int status;
	uint32_t tid;
	uintptr_t addr;
	size_t committed;
};

#define KILL_LOG 16
static struct kill_note kill_log[KILL_LOG];
static unsigned int kill_n, kill_dropped;
static _Atomic uint32_t kill_lock;

void gr_kill_note(const struct gr_coro *c)
{
	if (gr_rt.cfg.verbose < 1)
		return;
	gr_lock(&kill_lock);
	if (kill_n < KILL_LOG)
		kill_log[kill_n++] = (struct kill_note){
			.seq = c->seq, .name = c->name, .status = c->status,
			.tid = c->fault_tid, .addr = c->fault_addr,
			.committed = c->fault_committed,
		};
	else
		kill_dropped++;
	gr_unlock(&kill_lock);
}

static const char *const kill_what[] = {
	[GR_KILLED_OVERFLOW] = "hit the guard page of",
	[GR_KILLED_GROWFAIL] = "could not grow",
	[GR_KILLED_FAULT] = "had a system call write into the guard page of",
};

static void report_kills(void)
{
	struct kill_note k[KILL_LOG];
	unsigned int i, n, dropped;

	gr_lock(&kill_lock);
	n = kill_n;
	dropped = kill_dropped;
	memcpy(k, kill_log, n * sizeof(k[0]));
	kill_n = 0;
	kill_dropped = 0;
	gr_unlock(&kill_lock);
	for (i = 0; i < n; i++)
		fprintf(stderr, "greenrt: %s: coroutine #%lu%s%s%s %s its %zu KiB stack at %#"
			PRIxPTR " (thread %u, %zu KiB committed): killed; the other coroutines "
			"keep running\n",
			k[i].status == GR_KILLED_GROWFAIL ? "FAILED growth" : "OVERFLOW",
			k[i].seq, k[i].name ? " (" : "", k[i].name ? k[i].name : "",
			k[i].name ? ")" : "", kill_what[k[i].status], gr_rt.cfg.stack_max >> 10,
			k[i].addr, k[i].tid, k[i].committed >> 10);
	if (dropped)
		fprintf(stderr, "greenrt: %u more coroutines killed\n", dropped);
}

/* An access by the kernel: the coroutine got EFAULT and runs on. */
static void kill_owner(const struct sr_event *ev, void *arg)
{
	struct gr_stack *st = ev->user_data;
	struct gr_coro *c = st ? atomic_load(&st->owner) : NULL;

	gr_stat_inc(ev->type == SR_EVENT_OVERFLOW ? &gr_rt.st_ev_overflow : &gr_rt.st_ev_failed);
	/* By the task in user mode: the SIGSEGV handler ends the coroutine. */
	if (!c || ev->origin != SR_ORIGIN_KERNEL)
		return;
	c->fault_addr = (uintptr_t)ev->addr;
	c->fault_committed = ev->committed;
	c->fault_tid = ev->tid;
	atomic_store(&c->kill, ev->type == SR_EVENT_OVERFLOW ? GR_KILLED_FAULT :
		     GR_KILLED_GROWFAIL);
	gr_unpark(c);
}

static void watermark(const struct sr_event *ev, void *arg)
{
	struct gr_stack *st = ev->user_data;
	struct gr_coro *c = st ? atomic_load(&st->owner) : NULL;

	gr_stat_inc(&gr_rt.st_ev_watermark);
	if (gr_rt.cfg.verbose >= 2 &&
	    atomic_fetch_add(&gr_rt.wm_logged, 1) < gr_rt.cfg.watermark_log_max)
		fprintf(stderr, "greenrt: WATERMARK: coroutine #%lu's stack reached %" PRIu64
			" KiB committed (watermark %zu KiB)\n", c ? c->seq : 0UL,
			ev->committed >> 10, gr_rt.cfg.watermark >> 10);
}

static void lost(const struct sr_event *ev, void *arg)
{
	atomic_fetch_add(&gr_rt.st_ev_lost, ev->committed);
}

static void grow(const struct sr_event *ev, void *arg)
{
	gr_stat_inc(&gr_rt.st_ev_grow);
}

/* The records (libstackres's reader: stackres's, or its own below it). */
static void read_records(void)
{
	static const struct sr_event_handlers h = {
		.grow = grow, .watermark = watermark, .overflow = kill_owner,
		.failed = kill_owner, .lost = lost,
	};

	while (sr_events_read(gr_rt.ctx, &h, 1) > 0)
		;
}

/*
 * A coroutine parked for less than one pass is likely to run again at once:
 * it is a trim candidate on the second pass that finds it parked (or at
 * once when gr_manager_sync() asks for all).  It stays pinned (TRIMMING)
 * from when it joins a batch until the batch is trimmed; the cached stacks
 * join the last batch (gr_stacks_trim_with_cached()).
 */
static bool deferred;		/* the last pass saw coroutines parked only once */

static void trim_pass(bool all)
{
	struct gr_coro *cs[GR_TRIM_BATCH];
	struct gr_stack *sts[GR_TRIM_BATCH];
	uintptr_t sps[GR_TRIM_BATCH];
	size_t keep[GR_TRIM_BATCH];
	bool done[GR_TRIM_BATCH];
	uint32_t i = 0, n = atomic_load(&gr_rt.nstacks);
	uint64_t total = 0;
	unsigned int k, m;

	deferred = false;
	/* Under the budget: nothing to pin, nothing to trim. */
	if (gr_rt.cfg.trim_budget) {
		total = gr_committed();
		if (total <= gr_rt.cfg.trim_budget)
			return;
	}
	do {
		for (m = 0; i < n && m < GR_TRIM_BATCH; i++) {
			struct gr_stack *st = gr_stack_at(i);
			struct gr_coro *c = atomic_load(&st->owner);
			uint32_t s = GR_S_PARKED;

			if (!c || atomic_load(&c->state) != GR_S_PARKED ||
			    c->trim_gen == c->park_gen)
				continue;
			if (!all && c->seen_gen != c->park_gen) {
				c->seen_gen = c->park_gen;
				deferred = true;
				continue;
			}
			if (!atomic_compare_exchange_strong(&c->state, &s, GR_S_TRIMMING))
				continue;
			/* Pinned now; c may have been reused for another stack before. */
			if (c->stack == st && atomic_load(&st->owner) == c) {
				cs[m] = c;
				sts[m] = st;
				keep[m] = gr_rt.cfg.trim_keep;
				sps[m++] = (uintptr_t)c->ctx.sp;
				continue;
			}
			atomic_store(&c->state, GR_S_PARKED);
			if (atomic_load(&c->permit))
				gr_try_wake(c);
		}
		if (i < n)
			gr_stacks_trim(sts, sps, keep, m, done, total);
		else
			gr_stacks_trim_with_cached(sts, sps, keep, m, done, total);
		total = 0;		/* changed by this batch's trims */
		for (k = 0; k < m; k++) {
			/* Left alone under the budget: a candidate again next pass. */
			if (done[k]) {
				gr_stat_inc(&gr_rt.st_trims_parked);
				cs[k]->trim_gen = cs[k]->park_gen;
			}
			atomic_store(&cs[k]->state, GR_S_PARKED);
			if (atomic_load(&cs[k]->permit))
				gr_try_wake(cs[k]);
		}
	} while (i < n);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

/*
 * Every trim_interval_ms, and when gr_manager_sync() asks: read the records,
 * then the trim pass (skipped while no coroutine parked and no stack was
 * freed since the last one: the candidates are the same, and a total that
 * running coroutines alone pushed over the budget waits for the next park
 * or end, which in a green-thread runtime comes soon).  Records do not
 * wake the manager: a deep dive sends WATERMARK records, and a wake-up per
 * record costs two context switches; a system call's guard hit ends its
 * coroutine at a switch within trim_interval_ms instead of at the next one.
 */
static void *manager_main(void *arg)
{
	struct pollfd p = { .fd = gr_rt.efd, .events = POLLIN };
	uint64_t next_sample = 0, next_pass = 0, t;
	uint32_t req, events = 0, e;
	bool sync;

	(void)arg;
	while (!atomic_load(&gr_rt.mgr_stop)) {
		uint64_t v;

		t = now_ms();
		poll(&p, 1, next_pass > t ? (int)(next_pass - t) : 0);
		if (read(gr_rt.efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			break;
		req = atomic_load(&gr_rt.mgr_req);
		sync = req != atomic_load(&gr_rt.mgr_done);
		if (gr_rt.skind != GR_SK_SIGSEGV)
			read_records();
		t = now_ms();
		/* Nothing parked or freed since a pass that left nothing for later: skip. */
		e = atomic_load(&gr_rt.trim_events);
		if (sync || (t >= next_pass && (e != events || deferred))) {
			events = e;
			trim_pass(sync);
		}
		if (t >= next_pass)
			next_pass = t + gr_rt.cfg.trim_interval_ms;
		report_kills();
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
