/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libgreenrt: a small M:N green-thread runtime on libstackres.
 *
 * N worker threads run many coroutines.  Every coroutine stack is a
 * libstackres stack: natively a stackres reservation (a large maximum, a
 * guard page at the bottom, a small part committed at the start and the rest
 * committed by the kernel as the coroutine recurses).  A manager thread
 * reads the records: OVERFLOW by a system call kills the coroutine whose
 * guard it hit (only that one), WATERMARK is logged; and it trims parked
 * coroutines' and cached stacks under a budget (gr_config.trim_budget).
 * libstackres's SIGSEGV handler ends a coroutine that overflows.
 *
 * Workers (gr_config.worker_threads, GREENRT_WORKER_THREADS=raw|pthread):
 *   raw      raw clone(2) threads on libstackres's thread-stack cache,
 *            retired with exit_free(2) (the native default);
 *   pthread  pthreads (the fallback default).
 *
 * Without /dev/stackres (ABI version 1) or exit_free (or with
 * GREENRT_FALLBACK=1 in the environment) the same API runs on lazily
 * faulted read/write stacks with a guard page (libstackres's lower tiers)
 * and pthreads; gr_mode_reason() says why.
 *
 * Threads: gr_init(), gr_start(), gr_stop(), gr_shutdown(), gr_wait_*() and
 * gr_join() may be called from ordinary (pthread) threads; gr_spawn(),
 * gr_go(), gr_unpark() and the gate calls from threads and coroutines;
 * gr_yield(), gr_park(), gr_self() and gr_gate_wait() from coroutines only.
 * On raw clone workers coroutine code shares the process's libc thread
 * state with the main thread: it must not call libc functions that use
 * thread-local state (errno, malloc, stdio); plain computation, memcpy and
 * the gr_* calls are fine.  On pthread workers it may call them (errno is
 * the worker's, and a coroutine may move to another worker at a switch).
 */
#ifndef GREENRT_H
#define GREENRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*gr_fn)(void *arg);
struct gr_coro;

enum gr_mode {
	GR_MODE_AUTO = 0,	/* native if both features exist, else fallback */
	GR_MODE_NATIVE,		/* stackres stacks (+ raw clone/exit_free workers) */
	GR_MODE_FALLBACK,	/* lazy read/write stacks with a guard (+ pthreads) */
};

/* What the worker threads are. */
enum gr_workers {
	GR_WORKERS_DEFAULT = 0,	/* native: RAW; fallback: PTHREAD */
	GR_WORKERS_RAW,		/* raw clone(2) + exit_free(2) on cached stacks */
	GR_WORKERS_PTHREAD,	/* pthreads: coroutines may use libc's thread state */
};

/*
 * What coroutine stacks are made of.  The two others exist to compare the
 * mode's own stacks with what a runtime does without stackres (bench/):
 * they work in either mode and change nothing but the stacks.
 */
enum gr_stacks {
	GR_STACKS_DEFAULT = 0,	/* native: stackres reservations; fallback: LAZY */
	GR_STACKS_COMMITTED,	/* read/write and populated at creation, never trimmed */
	GR_STACKS_SIGSEGV,	/* PROT_NONE; the SIGSEGV handler mprotects touched parts RW */
	GR_STACKS_LAZY,		/* read/write, faulted lazily, a guard; MADV_DONTNEED trims */
};

/* Why a coroutine ended (gr_join() result, gr_coro_status()). */
enum gr_status {
	GR_OK = 0,		/* its function returned */
	GR_KILLED_OVERFLOW,	/* it hit the guard page of its stack */
	GR_KILLED_GROWFAIL,	/* the kernel could not commit more stack */
	GR_KILLED_FAULT,	/* the kernel faulted on its stack guard (EFAULT) */
};

struct gr_config {
	enum gr_mode mode;	/* GREENRT_FALLBACK=1 overrides to FALLBACK */
	unsigned int workers;	/* 0: number of online CPUs (at least 2) */
	size_t stack_max;	/* reservation size incl. guard; 0: 8 MiB (1 MiB on i386) */
	size_t stack_guard;	/* 0: one page */
	size_t stack_commit;	/* committed at the start; 0: 16 KiB */
	size_t watermark;	/* WATERMARK event level; 0: stack_max / 8 */
	size_t trim_keep;	/* bytes kept below a parked sp; 0: one page */
	unsigned int max_stacks;	/* registry capacity; 0: 32768 */
	unsigned int trim_interval_ms;	/* manager pass period; 0: 10 */
	int verbose;		/* manager messages on stderr: 0 none, 1 overflow, 2 + watermark */
	unsigned int watermark_log_max;	/* watermark lines printed; 0: 3 */
	enum gr_stacks stacks;	/* 0: the mode's own stacks */
	enum gr_workers worker_threads;	/* GREENRT_WORKER_THREADS overrides */
	/*
	 * Trim policy (sr_trim_budget()): nothing is trimmed while all stacks
	 * together hold at most trim_budget committed bytes; above it the
	 * stacks that free the most, down to trim_low (0: 3/4 of the budget),
	 * never below trim_warm bytes under their top.  0: trim every parked
	 * and cached stack once.
	 */
	uint64_t trim_budget;
	uint64_t trim_low;
	size_t trim_warm;
};

/* Counters; all monotonic except the committed_* figures. */
struct gr_stats {
	unsigned int workers;
	uint64_t spawned, finished, killed;
	uint64_t switches;
	uint64_t stacks_created, stacks_reused;
	/*
	 * Stacks trimmed.  Stackres: TRIM_VEC entries whose written-back
	 * committed ends at the cut (trimmed there, or already ending
	 * exactly there: without asking first the two look alike);
	 * other stacks: MADV_DONTNEED calls.
	 */
	uint64_t trims_parked, trims_cached;
	uint64_t ev_overflow, ev_watermark, ev_failed, ev_lost, ev_grow;
	uint64_t threads_started, thread_stacks_created, thread_stacks_reused;
	uint64_t exit_free_waits;	/* allocator slept on an exit_free word */
	uint64_t committed_peak;	/* largest sum seen by gr_committed() */
	/* the first coroutine killed by an overflow */
	unsigned long overflow_seq;
	uintptr_t overflow_addr;
	uintptr_t overflow_stack_start;
	size_t overflow_committed;
};

/* 0 or -errno; GR_MODE_NATIVE without the features: -ENOTTY for a version 0 module */
int gr_init(const struct gr_config *cfg);
enum gr_mode gr_mode(void);		/* NATIVE or FALLBACK after gr_init */
const char *gr_mode_reason(void);	/* why fallback was chosen ("" if native) */
int gr_start(void);		/* start the worker threads; 0 or -errno */
void gr_stop(void);		/* workers exit once every coroutine has ended */
void gr_shutdown(void);		/* gr_stop, wait for the workers, free everything */

/* Coroutines */
struct gr_coro *gr_spawn(gr_fn fn, void *arg);	/* joinable; NULL if out of memory */
int gr_go(gr_fn fn, void *arg);			/* detached; 0 or -errno */
int gr_join(struct gr_coro *c);			/* waits, frees c, returns enum gr_status */
void gr_yield(void);
void gr_park(void);		/* sleep until gr_unpark(); may return spuriously */
void gr_unpark(struct gr_coro *c);
struct gr_coro *gr_self(void);	/* coroutines only */
unsigned long gr_coro_seq(const struct gr_coro *c);	/* 1-based spawn number */
void gr_coro_set_name(struct gr_coro *c, const char *name);	/* static string */

/*
 * A gate: coroutines count themselves in and wait until a thread opens it.
 * Threads wait (futex) until a number of coroutines arrived.
 */
struct gr_gate {
	uint32_t lock;
	uint32_t open;
	uint32_t arrived;		/* futex word for gr_gate_wait_arrived() */
	uint32_t want;			/* arrivals a thread waits for */
	struct gr_coro *waiters;
};
void gr_gate_init(struct gr_gate *g);
void gr_gate_wait(struct gr_gate *g);	/* coroutine: arrive, park until open */
void gr_gate_open(struct gr_gate *g);
/* thread: wait until arrived + killed-since >= n; returns arrived */
uint32_t gr_gate_wait_arrived(struct gr_gate *g, uint32_t n, uint64_t killed_base);

/* Wait (thread) until the number of live coroutines is zero. */
void gr_wait_idle(void);

/* Ask the manager for one pass (events, trims) and wait for it. */
void gr_manager_sync(void);

/*
 * Sum of committed stack bytes over every stack: sr_committed_total() (one
 * STACKRES_IOC_LIST for reservations, resident pages below stackres; the
 * raw workers' stacks included), for SIGSEGV-grown stacks their read/write
 * size.  Updates the peak counter.
 */
uint64_t gr_committed(void);
void gr_get_stats(struct gr_stats *s);
size_t gr_stack_size(void);	/* configured stack_max */
size_t gr_stack_commit(void);	/* configured stack_commit */
size_t gr_trim_keep(void);
int gr_stackres_fd(void);	/* -1 without stackres stacks */
enum gr_workers gr_worker_threads(void);	/* RAW or PTHREAD after gr_init */
int gr_exit_free_available(void);	/* probe: 1 yes, 0 no */

#ifdef __cplusplus
}
#endif
#endif /* GREENRT_H */
