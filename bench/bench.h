/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared helpers of the stackres / exit_free benchmarks (bench/README.md).
 *
 * Every case prints one machine-readable line on stdout, parsed by bench/run
 * from the guest console:
 *   @@R  <case> <unit> <baseline> <n> <min> <median> <max>
 *   @@NA <case> <unit> <baseline> <reason...>
 * so the host never depends on anything but these lines.
 */
#ifndef BENCH_H
#define BENCH_H

#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define PG		4096UL
#define GROW_LEN	(8UL << 20)	/* the 8 MiB stack of cases 1 and 5 */

/* Child stacks of the raw clone cases (case 3): 64 KiB + one guard page. */
#define CHURN_STACK	(64UL << 10)
#define CHURN_GUARD	PG

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* Repetition multiplier (-r); every case scales its sample count by it. */
extern double rep_mult;
int reps(int n);

void report(const char *name, const char *unit, const char *base,
	    double *v, int n);
void report_na(const char *name, const char *unit, const char *base,
	       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Why stackres is unusable in this guest, or NULL when /dev/stackres opens. */
const char *stackres_absent(void);
/* Why exit_free is unusable, or NULL when syscall 463 is exit_free. */
const char *exit_free_absent(void);

void bench_churn(void);
void bench_greenrt(void);
void bench_dense(void);
void bench_libc(void);
void bench_gcbarrier(void);
void bench_mtgrow(void);

#endif
