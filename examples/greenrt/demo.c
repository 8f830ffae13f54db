// SPDX-License-Identifier: GPL-2.0
/*
 * greenrt demo: many coroutines recursing to random depths on growable
 * stackres stacks, one of them overflowing on purpose.
 *
 * Batches of coroutines run on N worker threads that are started for each
 * batch and retired at its end with exit_free (so the thread-stack cache is
 * exercised too).  In each batch every coroutine dives to its depth and waits
 * there at a gate (the committed sum then is the batch's peak), climbs back
 * and parks at a second gate (the manager trims the parked stacks), then ends.
 *
 * Environment: GREENRT_FALLBACK=1 (plain stacks + pthreads),
 * GREENRT_DEMO_TOTAL, GREENRT_DEMO_BATCH, GREENRT_WORKERS, GREENRT_TRIM_KEEP
 * (bytes kept below a parked coroutine's sp, default 4096), GREENRT_DEMO_PROFILE=1
 * (time per phase), GREENRT_STACK_MAX (bytes), GREENRT_STACKS=committed|sigsegv
 * (the stacks a runtime has without stackres, for bench/: gr_config.stacks).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "greenrt.h"

struct batch {
	struct gr_gate deep, rest;
	unsigned long first;		/* global number of its first coroutine */
	unsigned long victim;		/* coroutine that overflows, 0 if none here */
	size_t frame;			/* bytes per recursion level */
	size_t stack_max;
	uint32_t sum;			/* what the coroutines computed */
};

static struct batch B;

static uint32_t xorshift(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

/* How deep a coroutine goes: mostly a few KiB, a long tail up to MiBs. */
static size_t pick_bytes(unsigned long n, size_t stack_max)
{
	uint32_t s = 0x9e3779b9u ^ (uint32_t)(n * 2654435761u), r, lo, hi;

	xorshift(&s);
	r = xorshift(&s) % 1000;
	if (r < 750) {
		lo = 1 << 10; hi = 8 << 10;
	} else if (r < 950) {
		lo = 8 << 10; hi = 48 << 10;
	} else if (r < 995) {
		lo = 48 << 10; hi = 256 << 10;
	} else {
		lo = 256 << 10; hi = 2 << 20;
	}
	if (hi > stack_max / 2)
		hi = stack_max / 2;
	if (lo >= hi)
		lo = hi / 2;
	return lo + xorshift(&s) % (hi - lo);
}

static __attribute__((noinline)) uint32_t dive(unsigned long levels, uint32_t seed)
{
	volatile unsigned char buf[224];
	uint32_t r;

	buf[0] = (unsigned char)seed;
	buf[sizeof(buf) - 1] = (unsigned char)(seed >> 8);
	if (levels % 256 == 0)
		gr_yield();		/* interleave with the other coroutines */
	if (levels == 0) {
		gr_gate_wait(&B.deep);	/* deepest point: the batch's peak */
		return seed;
	}
	r = dive(levels - 1, seed * 1103515245u + 12345u);
	/* Work after the call keeps this a real recursion (no tail call). */
	return r ^ buf[0] ^ buf[sizeof(buf) - 1];
}

/* Far deeper than any stack: only the guard page stops it. */
static __attribute__((noinline)) uint32_t dive_forever(unsigned long levels, uint32_t seed)
{
	volatile unsigned char buf[224];

	buf[0] = (unsigned char)seed;
	if (!levels)
		return seed;
	return dive_forever(levels - 1, seed + 1) ^ buf[0];
}

static __attribute__((noinline)) void probe(volatile uintptr_t *out, int n)
{
	volatile char c;

	out[n] = (uintptr_t)&c;
	if (n < 2)
		probe(out, n + 1);
}

/* Bytes of stack one level of dive() takes (same frame shape as probe). */
static size_t frame_size(void)
{
	volatile uintptr_t a[3];

	probe(a, 0);
	return (a[0] - a[1]) > 0 ? (a[0] - a[1]) + 224 : 256;
}

static void coroutine(void *arg)
{
	unsigned long n = (unsigned long)arg;
	uint32_t r;

	if (n == B.victim) {
		dive_forever(~0UL, (uint32_t)n);	/* never returns: killed */
		return;
	}
	r = dive(pick_bytes(n, B.stack_max) / B.frame, (uint32_t)n);
	gr_gate_wait(&B.rest);			/* parked shallow: trimmed */
	__atomic_fetch_add(&B.sum, r & 1, __ATOMIC_RELAXED);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double mib(uint64_t b)
{
	return b / 1048576.0;
}

static uint64_t rss(void)
{
	unsigned long size, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%lu %lu", &size, &res) != 2)
			res = 0;
		fclose(f);
	}
	return (uint64_t)res * sysconf(_SC_PAGESIZE);
}

/* The process's peak resident set (VmHWM), 0 if unknown. */
static uint64_t rss_hwm(void)
{
	char line[128];
	unsigned long kb = 0;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %lu kB", &kb) == 1)
			break;
	fclose(f);
	return (uint64_t)kb << 10;
}

static unsigned long env_ul(const char *name, unsigned long def)
{
	const char *v = getenv(name);

	return v && *v ? strtoul(v, NULL, 0) : def;
}

static const char *const stacks_name[] = {
	[GR_STACKS_DEFAULT] = "default",
	[GR_STACKS_COMMITTED] = "committed",
	[GR_STACKS_SIGSEGV] = "sigsegv",
	[GR_STACKS_LAZY] = "lazy",
};

/* GREENRT_STACKS: -1 if it names no kind. */
static int env_stacks(void)
{
	const char *v = getenv("GREENRT_STACKS");
	unsigned int i;

	if (!v || !*v)
		return GR_STACKS_DEFAULT;
	for (i = 0; i < sizeof(stacks_name) / sizeof(stacks_name[0]); i++)
		if (!strcmp(v, stacks_name[i]))
			return i;
	return -1;
}

int main(void)
{
	const bool is64 = sizeof(long) == 8;
	unsigned long total = env_ul("GREENRT_DEMO_TOTAL", is64 ? 100000 : 10000);
	unsigned long bsize = env_ul("GREENRT_DEMO_BATCH", is64 ? 2000 : 500);
	unsigned long victim = is64 ? 31337 : 3137;
	unsigned long done = 0, nb = 0, nbatches, every;
	uint64_t peak = 0, peak_rss = 0, rest_max = 0, c, final_c, final_rss, rest_sum = 0;
	int stacks = env_stacks();
	struct gr_config cfg = {
		.workers = env_ul("GREENRT_WORKERS", 0),
		.trim_keep = env_ul("GREENRT_TRIM_KEEP", 0),
		.stack_max = env_ul("GREENRT_STACK_MAX", 0),
		.stacks = stacks,
		.verbose = 2,
		.trim_budget = env_ul("GREENRT_TRIM_BUDGET", 0),
		.trim_low = env_ul("GREENRT_TRIM_LOW", 0),
		.trim_warm = env_ul("GREENRT_TRIM_WARM", 0),
	};
	struct gr_stats s;
	double t0 = now(), t, tp[7] = { 0 };
	int r, ok;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (stacks < 0) {
		fprintf(stderr, "demo: GREENRT_STACKS=%s: not default, committed, sigsegv or lazy\n",
			getenv("GREENRT_STACKS"));
		return 2;
	}
	if (victim > total)
		victim = total / 2 + 1;
	r = gr_init(&cfg);
	if (r) {
		fprintf(stderr, "demo: gr_init: %s\n", strerror(-r));
		return 1;
	}
	nbatches = (total + bsize - 1) / bsize;
	every = nbatches >= 5 ? nbatches / 5 : 1;
	B.frame = frame_size();
	B.stack_max = gr_stack_size();
	printf("greenrt demo (%s): %lu coroutines in %lu batches of %lu, %s + %s workers\n",
	       is64 ? "x86_64" : "i386", total, nbatches, bsize,
	       gr_mode() == GR_MODE_NATIVE ? "stackres stacks" :
	       "FALLBACK: lazy read/write stacks with a guard",
	       gr_worker_threads() == GR_WORKERS_RAW ? "raw clone/exit_free" : "pthread");
	if (gr_mode() != GR_MODE_NATIVE)
		printf("  fallback because: %s\n", gr_mode_reason());
	printf("  stacks: %zu KiB max, %zu KiB committed at start, 4 KiB guard; "
	       "coroutine #%lu recurses without end\n",
	       gr_stack_size() >> 10, gr_stack_commit() >> 10, victim);
	if (stacks == GR_STACKS_COMMITTED)
		printf("  GREENRT_STACKS=committed: every stack read/write and populated at creation, never trimmed\n");
	else if (stacks == GR_STACKS_SIGSEGV)
		printf("  GREENRT_STACKS=sigsegv: PROT_NONE stacks grown by the SIGSEGV handler (mprotect), trimmed with MADV_DONTNEED + PROT_NONE\n");
	else if (stacks == GR_STACKS_LAZY)
		printf("  GREENRT_STACKS=lazy: read/write stacks faulted lazily, a guard page, "
		       "trimmed with MADV_DONTNEED\n");
	if (cfg.trim_budget)
		printf("  trim budget %" PRIu64 " KiB (down to %" PRIu64 " KiB), %zu KiB kept warm\n",
		       cfg.trim_budget >> 10,
		       (cfg.trim_low ? cfg.trim_low : cfg.trim_budget / 4 * 3) >> 10,
		       cfg.trim_warm >> 10);

	while (done < total) {
		unsigned long n = total - done < bsize ? total - done : bsize, i;
		struct gr_stats s0;

		gr_get_stats(&s0);
		gr_gate_init(&B.deep);
		gr_gate_init(&B.rest);
		B.first = done + 1;
		B.victim = victim >= B.first && victim < B.first + n ? victim : 0;
		tp[0] -= now();
		r = gr_start();
		if (r) {
			fprintf(stderr, "demo: gr_start: %s\n", strerror(-r));
			return 1;
		}
		for (i = 0; i < n; i++) {
			r = gr_go(coroutine, (void *)(done + 1 + i));
			if (r) {
				fprintf(stderr, "demo: gr_go: %s\n", strerror(-r));
				return 1;
			}
		}
		tp[0] += now();
		tp[1] -= now();
		/* Everyone at its deepest point (or killed on the way). */
		gr_gate_wait_arrived(&B.deep, n, s0.killed);
		tp[1] += now();
		tp[2] -= now();
		c = gr_committed();
		if (c > peak)
			peak = c;
		if (rss() > peak_rss)
			peak_rss = rss();
		tp[2] += now();
		tp[3] -= now();
		gr_gate_open(&B.deep);
		gr_gate_wait_arrived(&B.rest, n, s0.killed);
		tp[3] += now();
		tp[4] -= now();
		gr_manager_sync();		/* the manager trims the parked stacks */
		tp[4] += now();
		tp[5] -= now();
		c = gr_committed();
		rest_sum += c;
		if (c > rest_max)
			rest_max = c;
		tp[5] += now();
		tp[6] -= now();
		gr_gate_open(&B.rest);
		gr_stop();			/* workers retire with exit_free */
		tp[6] += now();
		done += n;
		nb++;
		if (nb % every == 0 || done == total)
			printf("  batch %lu/%lu: %lu coroutines done, %.1f s\n",
			       nb, nbatches, done, now() - t0);
	}
	gr_manager_sync();			/* trims the cached stacks */
	final_c = gr_committed();
	final_rss = rss();
	t = now() - t0;
	gr_get_stats(&s);

	printf("\n=== greenrt summary (%s, %s) ===\n", is64 ? "x86_64" : "i386",
	       gr_mode() == GR_MODE_NATIVE ? "stackres + exit_free" : "fallback");
	printf("coroutines run      %" PRIu64 " (%" PRIu64 " finished, %" PRIu64 " killed) on %u workers, %" PRIu64 " switches\n",
	       s.spawned, s.finished, s.killed, s.workers, s.switches);
	if (s.overflow_seq)
		printf("overflow caught     coroutine #%lu hit its guard at %#" PRIxPTR
		       " (stack %#" PRIxPTR ", %zu KiB committed); the rest ran on\n",
		       s.overflow_seq, s.overflow_addr, s.overflow_stack_start,
		       s.overflow_committed >> 10);
	else
		printf("overflow caught     NONE (expected coroutine #%lu)\n", victim);
	if (stacks == GR_STACKS_COMMITTED)
		printf("(committed stacks: \"committed\" is the read/write mapped size, never trimmed)\n");
	else if (stacks == GR_STACKS_SIGSEGV)
		printf("(sigsegv stacks: \"committed\" is the read/write part of each stack)\n");
	else if (stacks == GR_STACKS_LAZY || gr_mode() != GR_MODE_NATIVE)
		printf("(lazy stacks: \"committed\" is the resident pages (mincore); "
		       "TRIM is MADV_DONTNEED)\n");
	printf("committed stacks    peak %.1f MiB (all of a batch at depth), parked+trimmed %.1f MiB max (%.1f avg), final %.1f MiB\n",
	       mib(peak), mib(rest_max), mib(rest_sum / (nb ? nb : 1)), mib(final_c));
	printf("resident (RSS)      peak %.1f MiB, final %.1f MiB, high-water (VmHWM) %.1f MiB\n",
	       mib(peak_rss), mib(final_rss), mib(rss_hwm()));
	printf("stacks              %" PRIu64 " created (%.1f GiB reserved), %" PRIu64 " reuses, %" PRIu64 " trimmed (%" PRIu64 " parked, %" PRIu64 " cached)\n",
	       s.stacks_created, s.stacks_created * (double)gr_stack_size() / (1 << 30),
	       s.stacks_reused, s.trims_parked + s.trims_cached, s.trims_parked, s.trims_cached);
	if (gr_mode() == GR_MODE_NATIVE) {
		printf("upcall records      %" PRIu64 " overflow, %" PRIu64 " watermark, %" PRIu64 " failed, %" PRIu64 " lost\n",
		       s.ev_overflow, s.ev_watermark, s.ev_failed, s.ev_lost);
		printf("worker threads      %" PRIu64 " started on %" PRIu64 " stacks (%" PRIu64 " reuses, %" PRIu64 " waited for the exit_free store)\n",
		       s.threads_started, s.thread_stacks_created, s.thread_stacks_reused,
		       s.exit_free_waits);
	}
	printf("elapsed             %.2f s\n", t);
	if (getenv("GREENRT_DEMO_PROFILE"))
		printf("phases              start+spawn %.2f, dive %.2f, measure %.2f, climb %.2f, trim %.2f, measure %.2f, finish+stop %.2f s\n",
		       tp[0], tp[1], tp[2], tp[3], tp[4], tp[5], tp[6]);
	ok = s.killed == 1 && s.overflow_seq == victim && s.finished == total - 1 &&
	     s.spawned == total;
	printf("result              %s\n", ok ? "OK" : "UNEXPECTED (see above)");
	gr_shutdown();
	return ok ? 0 : 1;
}
