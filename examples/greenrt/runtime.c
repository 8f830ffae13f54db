// SPDX-License-Identifier: GPL-2.0
/*
 * Runtime setup: choose native or fallback mode, the kind of stacks and of
 * worker threads, start and stop the workers, statistics.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

void gr_sched_stop(void);

static size_t pow2_up(size_t v)
{
	size_t p = GR_PAGE;

	while (p < v)
		p <<= 1;
	return p;
}

static void defaults(struct gr_config *c)
{
	long n;

	if (!c->workers) {
		n = sysconf(_SC_NPROCESSORS_ONLN);
		c->workers = n < 2 ? 2 : n;
	}
	if (c->workers > GR_MAX_WORKERS)
		c->workers = GR_MAX_WORKERS;
	if (!c->stack_max)
		c->stack_max = sizeof(long) == 8 ? 8UL << 20 : 1UL << 20;
	/* Aligned power-of-two blocks let a coroutine find itself from sp. */
	c->stack_max = pow2_up(c->stack_max);
	if (!c->stack_guard)
		c->stack_guard = GR_PAGE;
	if (!c->stack_commit)
		c->stack_commit = 16 * 1024;
	if (!c->watermark)
		c->watermark = c->stack_max / 8;
	if (!c->trim_keep)
		c->trim_keep = GR_PAGE;
	if (!c->max_stacks)
		c->max_stacks = 32768;
	if (!c->trim_interval_ms)
		c->trim_interval_ms = 10;
	if (!c->watermark_log_max)
		c->watermark_log_max = 3;
	if (!c->trim_low || c->trim_low > c->trim_budget)
		c->trim_low = c->trim_budget / 4 * 3;
}

/* GR_SK_*: what gr_config.stacks asks for in this mode. */
static int stack_kind(void)
{
	switch (gr_rt.cfg.stacks) {
	case GR_STACKS_COMMITTED:
		return GR_SK_COMMITTED;
	case GR_STACKS_SIGSEGV:
		return GR_SK_SIGSEGV;
	case GR_STACKS_LAZY:
		return GR_SK_LAZY;
	default:
		return gr_rt.mode == GR_MODE_NATIVE ? GR_SK_STACKRES : GR_SK_LAZY;
	}
}

/* The libstackres context of the stacks: stackres, or the best tier below it. */
static int stacks_ctx(sr_ctx *native)
{
	const struct gr_config *c = &gr_rt.cfg;
	int r;

	if (gr_rt.skind == GR_SK_STACKRES) {
		gr_rt.ctx = native;
	} else {
		if (native)
			sr_ctx_destroy(native);
		r = sr_ctx_create(SR_TIER_GUARD_MARKERS, 0, &gr_rt.ctx);
		if (r)
			return r;
	}
	/* Aligned blocks: a coroutine finds its stack from its sp. */
	r = sr_ctx_set(gr_rt.ctx, SR_PARAM_ALIGN, c->stack_max);
	if (!r && gr_rt.skind == GR_SK_STACKRES)
		r = sr_ctx_set(gr_rt.ctx, SR_PARAM_COMMIT, c->stack_commit);
	if (!r && gr_rt.skind == GR_SK_STACKRES)
		r = sr_ctx_set(gr_rt.ctx, SR_PARAM_WATERMARK, c->watermark);
	return r;
}

static enum gr_workers env_workers(enum gr_workers w)
{
	const char *env = getenv("GREENRT_WORKER_THREADS");

	if (env && !strcmp(env, "raw"))
		return GR_WORKERS_RAW;
	if (env && !strcmp(env, "pthread"))
		return GR_WORKERS_PTHREAD;
	if (w == GR_WORKERS_DEFAULT)
		return gr_rt.mode == GR_MODE_NATIVE ? GR_WORKERS_RAW : GR_WORKERS_PTHREAD;
	return w;
}

int gr_init(const struct gr_config *cfg)
{
	const char *env = getenv("GREENRT_FALLBACK");
	bool exit_free_ok;
	sr_ctx *native = NULL;
	int r, err;

	memset(&gr_rt, 0, sizeof(gr_rt));
	gr_rt.efd = -1;
	if (cfg)
		gr_rt.cfg = *cfg;
	defaults(&gr_rt.cfg);

	/* libstackres says why not: no module, or one without ABI version 1. */
	err = sr_ctx_create(SR_TIER_STACKRES, 0, &native);
	if (!err && sr_ctx_tier(native) != SR_TIER_STACKRES) {
		snprintf(gr_rt.reason, sizeof(gr_rt.reason), "%s", sr_ctx_tier_reason(native));
		err = strstr(gr_rt.reason, "version 0") ? -ENOTTY : -ENOENT;
		sr_ctx_destroy(native);
		native = NULL;
	}
	exit_free_ok = gr_exit_free_available();
	if (env && env[0] && strcmp(env, "0")) {
		gr_rt.mode = GR_MODE_FALLBACK;
		snprintf(gr_rt.reason, sizeof(gr_rt.reason), "GREENRT_FALLBACK=%s", env);
	} else if (gr_rt.cfg.mode == GR_MODE_FALLBACK) {
		gr_rt.mode = GR_MODE_FALLBACK;
		snprintf(gr_rt.reason, sizeof(gr_rt.reason), "asked for by the program");
	} else if (!err && exit_free_ok) {
		gr_rt.mode = GR_MODE_NATIVE;
	} else {
		size_t l = strlen(gr_rt.reason);

		if (!exit_free_ok)
			snprintf(gr_rt.reason + l, sizeof(gr_rt.reason) - l,
				 "%sno exit_free(2) (ENOSYS)", l ? ", " : "");
		if (gr_rt.cfg.mode == GR_MODE_NATIVE) {
			if (gr_rt.cfg.verbose >= 1)
				fprintf(stderr, "greenrt: no native mode: %s\n", gr_rt.reason);
			if (native)
				sr_ctx_destroy(native);
			/* a version 0 module: ENOTTY, as its FEATURES ioctl answers */
			return err ? err : -ENOSYS;
		}
		gr_rt.mode = GR_MODE_FALLBACK;
	}
	if (gr_rt.mode != GR_MODE_NATIVE && native) {
		sr_ctx_destroy(native);
		native = NULL;
	}
	gr_rt.wkind = env_workers(gr_rt.cfg.worker_threads);
	gr_rt.skind = stack_kind();
	r = stacks_ctx(native);
	if (r)
		return r;
	gr_rt.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (gr_rt.efd < 0)
		return -errno;
	r = gr_stacks_init();
	if (r)
		return r;
	r = gr_fault_init();
	if (r)
		return r < 0 ? r : -errno;
	return gr_manager_start();
}

enum gr_mode gr_mode(void)
{
	return gr_rt.mode;
}

const char *gr_mode_reason(void)
{
	return gr_rt.reason;
}

int gr_stackres_fd(void)
{
	return gr_rt.skind == GR_SK_STACKRES ? sr_events_fd(gr_rt.ctx) : -1;
}

enum gr_workers gr_worker_threads(void)
{
	return gr_rt.wkind;
}

size_t gr_stack_size(void)
{
	return gr_rt.cfg.stack_max;
}

size_t gr_stack_commit(void)
{
	return gr_rt.cfg.stack_commit;
}

size_t gr_trim_keep(void)
{
	return gr_rt.cfg.trim_keep;
}

static void worker_main(struct gr_worker *w)
{
	gr_worker_loop(w);
	if (atomic_fetch_sub(&gr_rt.running_workers, 1) == 1)
		gr_futex_wake(&gr_rt.running_workers, 1 << 30);
}

/* Raw clone workers have an altstack from the thread-stack cache. */
static int worker_raw(void *arg)
{
	worker_main(arg);
	return 0;
}

static void *worker_pthread(void *arg)
{
	int r = sr_thread_altstack(0);

	if (r)
		fprintf(stderr, "greenrt: no alternate signal stack: %s\n", strerror(-r));
	worker_main(arg);
	sr_thread_altstack_free();
	return NULL;
}

int gr_start(void)
{
	unsigned int i;
	int r;

	atomic_store(&gr_rt.stopping, 0);
	for (i = 0; i < gr_rt.cfg.workers; i++) {
		struct gr_worker *w = &gr_rt.workers[i];

		w->index = i;
		w->current = NULL;
		atomic_fetch_add(&gr_rt.running_workers, 1);
		if (gr_rt.wkind == GR_WORKERS_RAW) {
			r = gr_thread_spawn(worker_raw, w, &w->ts);
			r = r < 0 ? r : 0;
		} else {
			pthread_t t;

			r = -pthread_create(&t, NULL, worker_pthread, w);
			w->pthread = (unsigned long)t;
		}
		if (r) {
			atomic_fetch_sub(&gr_rt.running_workers, 1);
			return r;
		}
	}
	gr_rt.nworkers = gr_rt.cfg.workers;
	return 0;
}

/*
 * Returns once every coroutine has ended and every worker has exited: raw
 * clone workers once the kernel stored their stacks' words (their stacks are
 * then free in the cache for the next gr_start()), pthreads once joined.
 */
void gr_stop(void)
{
	uint32_t n;
	unsigned int i;

	gr_wait_idle();
	gr_sched_stop();
	while ((n = atomic_load(&gr_rt.running_workers)) != 0)
		gr_futex_wait(&gr_rt.running_workers, n, 100);
	if (gr_rt.wkind == GR_WORKERS_PTHREAD)
		for (i = 0; i < gr_rt.nworkers; i++)
			pthread_join((pthread_t)gr_rt.workers[i].pthread, NULL);
	else
		gr_threads_wait_all();
	gr_rt.nworkers = 0;
}

void gr_shutdown(void)
{
	gr_stop();
	gr_manager_stop();
	gr_threads_destroy();
	gr_stacks_destroy();
	gr_fault_fini();
	if (gr_rt.efd >= 0)
		close(gr_rt.efd);
	gr_rt.efd = -1;
	if (gr_rt.ctx)
		sr_ctx_destroy(gr_rt.ctx);
	gr_rt.ctx = NULL;
}

uint64_t gr_committed(void)
{
	uint64_t sum = gr_committed_sum(), peak;

	peak = atomic_load(&gr_rt.st_committed_peak);
	while (sum > peak &&
	       !atomic_compare_exchange_weak(&gr_rt.st_committed_peak, &peak, sum))
		;
	return sum;
}

void gr_get_stats(struct gr_stats *s)
{
	unsigned int i;

	memset(s, 0, sizeof(*s));
	s->workers = gr_rt.cfg.workers;
	s->spawned = gr_rt.st_spawned;
	s->finished = gr_rt.st_finished;
	s->killed = gr_rt.st_killed;
	for (i = 0; i < GR_MAX_WORKERS; i++)
		s->switches += gr_rt.workers[i].switches;
	s->stacks_created = gr_rt.st_stacks_created;
	s->stacks_reused = gr_rt.st_stacks_reused;
	s->trims_parked = gr_rt.st_trims_parked;
	s->trims_cached = gr_rt.st_trims_cached;
	s->ev_overflow = gr_rt.st_ev_overflow;
	s->ev_watermark = gr_rt.st_ev_watermark;
	s->ev_failed = gr_rt.st_ev_failed;
	s->ev_lost = gr_rt.st_ev_lost;
	s->ev_grow = gr_rt.st_ev_grow;
	gr_stats_thread(s);
	s->committed_peak = gr_rt.st_committed_peak;
	if (atomic_load(&gr_rt.overflow_seen)) {
		s->overflow_seq = gr_rt.overflow_seq;
		s->overflow_addr = gr_rt.overflow_addr;
		s->overflow_stack_start = gr_rt.overflow_stack_start;
		s->overflow_committed = gr_rt.overflow_committed;
	}
}
