// SPDX-License-Identifier: GPL-2.0
/*
 * The manager thread: reads stack fault upcalls from the stackres fd,
 * reports kills and trims stacks.
 *
 * Records (version 1, 64 bytes) carry the gr_stack (user_data) and who
 * made the access (origin).  OVERFLOW or FAILED by the task in user mode:
 * the SIGSEGV handler ends the coroutine; only counted here.  By the kernel
 * (a system call writing into the guard got EFAULT, no signal): the owner
 * is asked to die at its next switch.  WATERMARK: logged.  LOST: counted.
 * Kills are reported from the workers' notes (gr_kill_note()), as the
 * workers cannot print.
 * Trimming: each parked coroutine's stack is trimmed once per parking down to
 * its saved stack pointer (minus trim_keep); cached stacks back to the initial
 * commit; a batch of stacks per STACKRES_IOC_TRIM_VEC call.
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
static void kill_owner(const struct stackres_record *r)
{
	struct gr_stack *st = (struct gr_stack *)(uintptr_t)r->user_data;
	struct gr_coro *c = atomic_load(&st->owner);

	if (!c)
		return;
	c->fault_addr = r->addr;
	c->fault_committed = r->committed;
	c->fault_tid = r->tid;
	atomic_store(&c->kill, r->type == STACKRES_EV_OVERFLOW ? GR_KILLED_FAULT :
		     GR_KILLED_GROWFAIL);
	gr_unpark(c);
}

static void read_records(void)
{
	struct stackres_record recs[32];
	unsigned int i, n;
	ssize_t r;

	while ((r = read(gr_rt.srfd, recs, sizeof(recs))) > 0) {
		n = r / sizeof(recs[0]);
		for (i = 0; i < n; i++) {
			const struct stackres_record *rec = &recs[i];
			struct gr_stack *st = (struct gr_stack *)(uintptr_t)rec->user_data;
			struct gr_coro *c;

			switch (rec->type) {
			case STACKRES_EV_OVERFLOW:
			case STACKRES_EV_FAILED:
				gr_stat_inc(rec->type == STACKRES_EV_OVERFLOW ?
					    &gr_rt.st_ev_overflow : &gr_rt.st_ev_failed);
				if (rec->origin == STACKRES_ORIGIN_KERNEL)
					kill_owner(rec);
				break;
			case STACKRES_EV_WATERMARK:
				gr_stat_inc(&gr_rt.st_ev_watermark);
				if (gr_rt.cfg.verbose >= 2 &&
				    atomic_fetch_add(&gr_rt.wm_logged, 1) <
				    gr_rt.cfg.watermark_log_max) {
					c = atomic_load(&st->owner);
					fprintf(stderr, "greenrt: WATERMARK: coroutine #%lu's stack reached "
						"%" PRIu64 " KiB committed (watermark %zu KiB)\n",
						c ? c->seq : 0UL, (uint64_t)rec->committed >> 10,
						gr_rt.cfg.watermark >> 10);
				}
				break;
			case STACKRES_EV_LOST:
				atomic_fetch_add(&gr_rt.st_ev_lost, rec->committed);
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
 * gr_manager_sync() asks for all).  It stays pinned (TRIMMING) from when it
 * joins a batch until the batch is trimmed.
 */
static void trim_parked(bool all)
{
	struct gr_coro *cs[GR_TRIM_BATCH];
	struct gr_stack *sts[GR_TRIM_BATCH];
	uintptr_t sps[GR_TRIM_BATCH];
	bool done[GR_TRIM_BATCH];
	uint32_t i = 0, n = atomic_load(&gr_rt.nstacks);
	unsigned int k, m;

	while (i < n) {
		for (m = 0; i < n && m < GR_TRIM_BATCH; i++) {
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
				cs[m] = c;
				sts[m] = st;
				sps[m++] = (uintptr_t)c->ctx.sp;
				continue;
			}
			atomic_store(&c->state, GR_S_PARKED);
			if (atomic_load(&c->permit))
				gr_try_wake(c);
		}
		gr_stacks_trim(sts, sps, gr_rt.cfg.trim_keep, m, done);
		for (k = 0; k < m; k++) {
			if (done[k]) {
				gr_stat_inc(&gr_rt.st_trims_parked);
				sts[k]->low_sp = sps[k];
			}
			cs[k]->trim_gen = cs[k]->park_gen;
			atomic_store(&cs[k]->state, GR_S_PARKED);
			if (atomic_load(&cs[k]->permit))
				gr_try_wake(cs[k]);
		}
	}
}

void gr_manager_pass(bool all)
{
	if (gr_rt.mode == GR_MODE_NATIVE)
		read_records();
	trim_parked(all);
	gr_stacks_trim_cached();
	report_kills();
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
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
