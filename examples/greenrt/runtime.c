// SPDX-License-Identifier: GPL-2.0
/*
 * Runtime setup: choose native or fallback mode and the kind of stacks, start
 * and stop the worker threads, statistics.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/stackres.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
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
}

/*
 * libgreenrt makes the calls of stackres ABI version 1 (user_data, QUERY_ANY,
 * TRIM_ADDR, TRIM_VEC, LIST, 64-byte records).  A version 0 module has no
 * STACKRES_IOC_FEATURES (ENOTTY): say so rather than run on calls it would
 * refuse or misread.  Switches the fd to version 1 records.
 */
static int stackres_probe(int fd)
{
	struct stackres_features f = { .version = 0 };
	uint32_t rsize = sizeof(struct stackres_record);
	int e;

	if (!ioctl(fd, STACKRES_IOC_FEATURES, &f) && f.version >= 1 &&
	    !ioctl(fd, STACKRES_IOC_RECORD_SIZE, &rsize)) {
		gr_rt.trim_vec_max = f.trim_vec_max;
		return 0;
	}
	e = errno == ENOTTY || !f.version ? ENOTTY : errno;
	snprintf(gr_rt.reason, sizeof(gr_rt.reason), "/dev/stackres: %s",
		 e != ENOTTY ? strerror(e) :
		 "ABI version 0 (no STACKRES_IOC_FEATURES); libgreenrt needs version 1");
	return -e;
}

int gr_init(const struct gr_config *cfg)
{
	const char *env = getenv("GREENRT_FALLBACK");
	bool exit_free_ok, stackres_ok;
	int fd, r, err = 0;

	memset(&gr_rt, 0, sizeof(gr_rt));
	gr_rt.srfd = gr_rt.efd = -1;
	if (cfg)
		gr_rt.cfg = *cfg;
	defaults(&gr_rt.cfg);

	fd = open("/dev/stackres", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		err = errno;
	else
		err = -stackres_probe(fd);
	stackres_ok = !err;
	exit_free_ok = gr_exit_free_available();
	if (env && env[0] && strcmp(env, "0")) {
		gr_rt.mode = GR_MODE_FALLBACK;
		snprintf(gr_rt.reason, sizeof(gr_rt.reason), "GREENRT_FALLBACK=%s", env);
	} else if (gr_rt.cfg.mode == GR_MODE_FALLBACK) {
		gr_rt.mode = GR_MODE_FALLBACK;
		snprintf(gr_rt.reason, sizeof(gr_rt.reason), "asked for by the program");
	} else if (stackres_ok && exit_free_ok) {
		gr_rt.mode = GR_MODE_NATIVE;
	} else {
		size_t l;

		/* A failed probe left its reason. */
		if (fd < 0)
			snprintf(gr_rt.reason, sizeof(gr_rt.reason), "no /dev/stackres (%s)",
				 strerror(err));
		l = strlen(gr_rt.reason);
		if (!exit_free_ok)
			snprintf(gr_rt.reason + l, sizeof(gr_rt.reason) - l,
				 "%sno exit_free(2) (ENOSYS)", l ? ", " : "");
		if (gr_rt.cfg.mode == GR_MODE_NATIVE) {
			if (gr_rt.cfg.verbose >= 1)
				fprintf(stderr, "greenrt: no native mode: %s\n", gr_rt.reason);
			if (fd >= 0)
				close(fd);
			return stackres_ok ? -ENOSYS : -err;
		}
		gr_rt.mode = GR_MODE_FALLBACK;
	}
	if (gr_rt.mode == GR_MODE_NATIVE)
		gr_rt.srfd = fd;
	else if (fd >= 0)
		close(fd);
	switch (gr_rt.cfg.stacks) {
	case GR_STACKS_COMMITTED:
		gr_rt.skind = GR_SK_COMMITTED;
		break;
	case GR_STACKS_SIGSEGV:
		gr_rt.skind = GR_SK_SIGSEGV;
		break;
	default:
		gr_rt.skind = gr_rt.mode == GR_MODE_NATIVE ? GR_SK_STACKRES : GR_SK_RW;
	}

	gr_rt.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (gr_rt.efd < 0)
		return -errno;
	r = gr_stacks_init();
	if (r)
		return r;
	if (gr_fault_init())
		return -errno;
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
	return gr_rt.srfd;
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

static void worker_main(void *arg)
{
	struct gr_worker *w = arg;

	gr_fault_worker_init(w);
	gr_worker_loop(w);
	/* The altstack is reused by the next worker in this slot. */
	{
		stack_t ss = { .ss_flags = SS_DISABLE };

		gr_sys2(SYS_sigaltstack, &ss, NULL);
	}
	if (atomic_fetch_sub(&gr_rt.running_workers, 1) == 1)
		gr_futex_wake(&gr_rt.running_workers, 1 << 30);
}

static void *worker_pthread(void *arg)
{
	worker_main(arg);
	return NULL;
}

int gr_start(void)
{
	unsigned int i;
	int r;

	atomic_store(&gr_rt.stopping, 0);
	for (i = 0; i < gr_rt.cfg.workers; i++) {
		struct gr_worker *w = &gr_rt.workers[i];

		if (!w->altstack) {
			w->altstack = gr_mmap(NULL, GR_ALTSTACK, PROT_READ | PROT_WRITE,
					      MAP_PRIVATE | MAP_ANONYMOUS);
			if (!w->altstack)
				return -ENOMEM;
		}
		w->index = i;
		w->current = NULL;
		atomic_fetch_add(&gr_rt.running_workers, 1);
		if (gr_rt.mode == GR_MODE_NATIVE) {
			r = gr_thread_spawn(worker_main, w, &w->ts);
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
 * Returns once every coroutine has ended and every worker has left its loop.
 * Native workers then still finish their exit: the next gr_start() waits for
 * their exit_free stores before it reuses their stacks.
 */
void gr_stop(void)
{
	uint32_t n;
	unsigned int i;

	gr_wait_idle();
	gr_sched_stop();
	while ((n = atomic_load(&gr_rt.running_workers)) != 0)
		gr_futex_wait(&gr_rt.running_workers, n, 100);
	if (gr_rt.mode == GR_MODE_FALLBACK)
		for (i = 0; i < gr_rt.nworkers; i++)
			pthread_join((pthread_t)gr_rt.workers[i].pthread, NULL);
	gr_rt.nworkers = 0;
}

void gr_shutdown(void)
{
	unsigned int i;

	gr_stop();
	if (gr_rt.mode == GR_MODE_NATIVE)
		gr_threads_wait_all();
	gr_manager_stop();
	gr_stacks_destroy();
	if (gr_rt.srfd >= 0)
		close(gr_rt.srfd);
	if (gr_rt.efd >= 0)
		close(gr_rt.efd);
	gr_rt.srfd = gr_rt.efd = -1;
	for (i = 0; i < GR_MAX_WORKERS; i++) {
		if (gr_rt.workers[i].altstack)
			gr_munmap(gr_rt.workers[i].altstack, GR_ALTSTACK);
		gr_rt.workers[i].altstack = NULL;
	}
	signal(SIGSEGV, SIG_DFL);
}

/* Reservations: one STACKRES_IOC_LIST without entries gives the total. */
uint64_t gr_committed(void)
{
	uint32_t i, n = atomic_load(&gr_rt.nstacks);
	uint64_t sum = 0, peak;

	if (gr_rt.skind == GR_SK_STACKRES) {
		struct stackres_list l = { .entries = 0 };

		if (!ioctl(gr_rt.srfd, STACKRES_IOC_LIST, &l))
			sum = l.committed;
	} else {
		for (i = 0; i < n; i++)
			sum += gr_stack_committed(gr_stack_at(i));
	}
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
