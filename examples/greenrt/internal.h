/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libgreenrt internals shared by its source files.
 *
 * Raw clone(2) workers have no libc thread state of their own, so what they
 * run goes through gr_syscall() (which returns -errno and never touches
 * errno), the futex helpers below and libstackres (raw system calls on its
 * fault paths and thread exits).
 */
#ifndef GREENRT_INTERNAL_H
#define GREENRT_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>

#include <stackres/stackres.h>

#include "greenrt.h"

#define GR_PAGE		4096UL
#define GR_MAX_WORKERS	64
#define GR_TSTACK_SIZE	(128 * 1024)	/* worker thread stack, guard excluded */
/* GR_STACKS_SIGSEGV growth step: stackres's default chunk, for a like comparison. */
#define GR_SIGSEGV_STEP	(64 * 1024)

/* The kind of every coroutine stack (gr_rt.skind), fixed by gr_init(). */
enum {
	GR_SK_STACKRES,		/* stackres reservation (native default) */
	GR_SK_LAZY,		/* lazily faulted read/write + guard (fallback default) */
	GR_SK_COMMITTED,	/* GR_STACKS_COMMITTED */
	GR_SK_SIGSEGV,		/* GR_STACKS_SIGSEGV */
};

/* arch-*.S */
long gr_syscall(long nr, long a, long b, long c, long d, long e, long f);
struct gr_ctx {
	void *sp;
};
void gr_switch(struct gr_ctx *from, struct gr_ctx *to);
void gr_coro_trampoline(void);
void gr_ctx_init(struct gr_ctx *ctx, void *top, void *coro);	/* sched.c */

#define gr_sys0(n)		gr_syscall((n), 0, 0, 0, 0, 0, 0)
#define gr_sys1(n, a)		gr_syscall((n), (long)(a), 0, 0, 0, 0, 0)
#define gr_sys2(n, a, b)	gr_syscall((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define gr_sys3(n, a, b, c)	gr_syscall((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define gr_sys4(n, a, b, c, d)	\
	gr_syscall((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

void *gr_mmap(void *addr, size_t len, int prot, int flags);	/* NULL on failure */
int gr_munmap(void *addr, size_t len);
int gr_mprotect(void *addr, size_t len, int prot);

/* futex.c */
long gr_futex_wait(_Atomic uint32_t *w, uint32_t val, long timeout_ms);	/* -1: none */
long gr_futex_wake(_Atomic uint32_t *w, int n);
/* A three-state futex lock (0 free, 1 locked, 2 contended). */
void gr_lock(_Atomic uint32_t *l);
void gr_unlock(_Atomic uint32_t *l);
void gr_relax(void);

/* Coroutine states (gr_coro.state). */
enum {
	GR_S_NEW = 0,
	GR_S_READY,	/* in the run queue */
	GR_S_RUNNING,
	GR_S_PARKED,	/* context saved, waiting for gr_unpark() */
	GR_S_TRIMMING,	/* parked and pinned by the manager during a TRIM */
	GR_S_DEAD,
};

/* What a coroutine asked its worker for when it switched back. */
enum { GR_P_YIELD = 1, GR_P_PARK, GR_P_EXIT, GR_P_KILLED };

struct gr_stack;
struct gr_worker;

struct gr_coro {
	struct gr_ctx ctx;		/* saved sp while not running */
	struct gr_coro *next;		/* run queue and free list */
	struct gr_coro *gnext;		/* gate waiter list */
	struct gr_gate *arrive;		/* gate to count it at, once parked */
	gr_fn fn;
	void *arg;
	struct gr_stack *stack;
	struct gr_worker *worker;	/* running it, or last ran it */
	_Atomic uint32_t state;
	_Atomic uint32_t permit;	/* a gr_unpark() not yet consumed */
	_Atomic uint32_t kill;		/* manager: end it at the next switch (enum gr_status) */
	_Atomic uint32_t done;		/* futex word for thread joins */
	uint32_t park_gen;		/* bumped at every park */
	uint32_t trim_gen;		/* park_gen the manager last trimmed */
	uint32_t seen_gen;		/* park_gen the manager saw in its last pass */
	uint32_t detached;
	int status;			/* enum gr_status once dead */
	/* the fault that killed it: from the SIGSEGV handler or a record */
	uintptr_t fault_addr;
	size_t fault_committed;
	uint32_t fault_tid;
	unsigned long seq;
	const char *name;
	struct gr_coro *_Atomic joiner;	/* a coroutine sleeping in gr_join */
};

/*
 * One coroutine stack (gr_rt.skind), a stack_max-aligned block: a
 * libstackres stack whose user_data is its gr_stack, so faults and records
 * lead here without a lookup, or (GR_SK_SIGSEGV) greenrt's own mapping.
 */
struct gr_stack {
	uintptr_t start;		/* the block: guard, then the stack */
	size_t len, guard;
	sr_stack *sr;			/* NULL for GR_SK_SIGSEGV */
	_Atomic uint32_t dirty;		/* used since its last trim while cached */
	struct gr_coro *_Atomic owner;	/* NULL while cached */
	struct gr_stack *next;		/* cache list */
	uint32_t index;			/* in the registry */
	uintptr_t rw_low;		/* GR_SK_SIGSEGV: lowest read/write address */
};

struct gr_worker {
	struct gr_ctx sched_ctx;	/* the worker's scheduler loop */
	struct gr_coro *current;
	int pending;			/* GR_P_* from the coroutine */
	int index;
	sr_tstack *ts;			/* raw clone worker: its thread stack */
	unsigned long pthread;		/* pthread worker: pthread_t */
	uint64_t switches;
};

struct gr_rt {
	enum gr_mode mode;
	enum gr_workers wkind;		/* RAW or PTHREAD after gr_init() */
	int skind;			/* GR_SK_*: what the stacks are */
	struct gr_config cfg;
	char reason[160];
	sr_ctx *ctx;			/* libstackres: the stacks' tier */
	sr_ctx *tctx;			/* the raw clone workers' stacks' */
	sr_tcache *tcache;		/* their thread-stack cache */
	int efd;			/* eventfd waking the manager */

	/* run queue */
	_Atomic uint32_t rq_lock;
	struct gr_coro *rq_head, *rq_tail;
	_Atomic uint32_t rq_seq;	/* futex word idle workers sleep on */
	_Atomic uint32_t rq_sleepers;
	_Atomic uint32_t stopping;
	_Atomic uint32_t live;		/* coroutines spawned and not yet dead */
	_Atomic uint32_t live_seq;	/* futex word for gr_wait_idle() */

	struct gr_worker workers[GR_MAX_WORKERS];
	unsigned int nworkers;
	_Atomic uint32_t running_workers;

	/* coroutine stacks: registry and cache */
	_Atomic uint32_t stack_lock;
	struct gr_stack **stacks;	/* registry, never shrinks while running */
	_Atomic uint32_t nstacks;
	struct gr_stack *cache;		/* free stacks */

	/* coroutine structures */
	_Atomic uint32_t coro_lock;
	struct gr_coro *coro_free;
	_Atomic unsigned long next_seq;

	/* manager */
	unsigned long manager;		/* pthread_t */
	_Atomic uint32_t trim_events;	/* parks and freed stacks: trim candidates */
	_Atomic uint32_t mgr_req, mgr_done, mgr_stop;

	/* statistics */
	_Atomic uint64_t st_spawned, st_finished, st_killed, st_stacks_created,
		st_stacks_reused, st_trims_parked, st_trims_cached, st_ev_overflow,
		st_ev_watermark, st_ev_failed, st_ev_lost, st_ev_grow,
		st_committed_peak;
	_Atomic uint32_t wm_logged;
	_Atomic uint32_t overflow_seen;
	unsigned long overflow_seq;
	uintptr_t overflow_addr, overflow_stack_start;
	size_t overflow_committed;
};

extern struct gr_rt gr_rt;

/* sched.c */
void gr_worker_loop(struct gr_worker *w);
void gr_try_wake(struct gr_coro *c);
void gr_stats_thread(struct gr_stats *s);	/* thread.c part of the stats */

/* gate.c */
void gr_gate_arrive(struct gr_gate *g);

/* stack.c */
#define GR_TRIM_BATCH	256	/* stacks per gr_stacks_trim() call at most */
int gr_stacks_init(void);
struct gr_stack *gr_stack_get(void);
void gr_stack_put(struct gr_stack *st);
struct gr_stack *gr_stack_at(uint32_t i);
struct gr_stack *gr_stack_of(uintptr_t addr);	/* the stack addr lies in, or NULL */
uintptr_t gr_stack_top(const struct gr_stack *st);
/* Trim st[i] at sp[i] keeping keep[i] bytes below, under the budget; done[i]: cut. */
unsigned int gr_stacks_trim(struct gr_stack *const *st, const uintptr_t *sp,
			    const size_t *keep, unsigned int n, bool *done, uint64_t total);
/* The same with the cached stacks used since their last trim added to the batch. */
unsigned int gr_stacks_trim_with_cached(struct gr_stack **st, uintptr_t *sp, size_t *keep,
					unsigned int n, bool *done, uint64_t total);
uint64_t gr_committed_sum(void);
size_t gr_stack_committed(const struct gr_stack *st);
bool gr_stack_grow(struct gr_stack *st, uintptr_t addr);	/* GR_SK_SIGSEGV handler */
void gr_stacks_destroy(void);

/* fault.c */
int gr_fault_init(void);
void gr_fault_fini(void);

/* manager.c */
void gr_kill_note(const struct gr_coro *c);	/* worker: a kill for the manager to report */
int gr_manager_start(void);
void gr_manager_stop(void);

/* thread.c */
int gr_thread_spawn(int (*fn)(void *), void *arg, sr_tstack **ts_out);	/* tid or -errno */
void gr_threads_wait_all(void);
void gr_threads_destroy(void);

static inline void gr_stat_inc(_Atomic uint64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

#endif /* GREENRT_INTERNAL_H */
