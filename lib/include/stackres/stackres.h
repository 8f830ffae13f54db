/* SPDX-License-Identifier: MIT */
/*
 * libstackres: guarded, growable stacks for runtimes (coroutines, fibers,
 * green threads, thread libraries) on whatever the running kernel offers.
 *
 * A context (sr_ctx) picks the best tier at creation and keeps it:
 *   SR_TIER_STACKRES       /dev/stackres (stackres.ko, ABI version 1):
 *                          stacks that grow in the page-fault path, with
 *                          records of guard hits, growth and failures;
 *   SR_TIER_GUARD_MARKERS  MADV_GUARD_INSTALL (Linux 6.13+): a lazily
 *                          faulted read/write stack with a guard marker,
 *                          one VMA per stack;
 *   SR_TIER_MPROTECT       mmap() + mprotect(PROT_NONE) guard, two VMAs.
 * The same program runs on all three; only the tier differs.
 *
 * Every call returns 0 (or a count) on success and a negative errno value
 * on failure, and leaves errno alone unless it says otherwise.  Handles are
 * opaque.  See libstackres(3).
 */
#ifndef STACKRES_STACKRES_H
#define STACKRES_STACKRES_H

#include <stddef.h>
#include <stdint.h>

#define SR_VERSION_MAJOR	0
#define SR_VERSION_MINOR	1
#define SR_VERSION_PATCH	0
#define SR_VERSION_NUM(major, minor, patch) \
	(((major) << 16) | ((minor) << 8) | (patch))
/* The version of this header. */
#define SR_VERSION \
	SR_VERSION_NUM(SR_VERSION_MAJOR, SR_VERSION_MINOR, SR_VERSION_PATCH)
/* True when this header is at least version major.minor. */
#define SR_CHECK_VERSION(major, minor) \
	(SR_VERSION >= SR_VERSION_NUM((major), (minor), 0))

#if defined(__GNUC__)
#define SR_NORETURN __attribute__((__noreturn__))
#else
#define SR_NORETURN
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sr_ctx sr_ctx;
typedef struct sr_stack sr_stack;
typedef struct sr_arena sr_arena;
typedef struct sr_tcache sr_tcache;
typedef struct sr_tstack sr_tstack;

/* The version of the library in use (SR_VERSION of its build). */
int sr_version(void);

/* Tiers, best last.  0 as a maximum means "the best there is". */
enum sr_tier {
	SR_TIER_BEST = 0,
	SR_TIER_MPROTECT = 1,
	SR_TIER_GUARD_MARKERS = 2,
	SR_TIER_STACKRES = 3
};

/* sr_ctx_create() flags */
#define SR_CTX_EXACT_TIER	(1U << 0)	/* fail (-EOPNOTSUPP) below max_tier */

int sr_ctx_create(int max_tier, unsigned int flags, sr_ctx **ctxp);
int sr_ctx_destroy(sr_ctx *ctx);
int sr_ctx_tier(const sr_ctx *ctx);
/* Why no higher tier was chosen ("" at the best tier). */
const char *sr_ctx_tier_reason(const sr_ctx *ctx);
const char *sr_tier_name(int tier);
size_t sr_ctx_page_size(const sr_ctx *ctx);

/* sr_ctx_set() parameters, for the stacks created afterwards. */
enum sr_param {
	SR_PARAM_COMMIT = 1,	/* stackres: bytes committed at once (0) */
	SR_PARAM_CHUNK = 2,	/* stackres: growth step, 0 = the module's (0) */
	SR_PARAM_WATERMARK = 3,	/* stackres: WATERMARK record at this size (0: none) */
	SR_PARAM_NOTIFY_GROW = 4,	/* stackres: a GROW record per growth step (0) */
	SR_PARAM_ALIGN = 5	/* every tier: alignment of a mapping's start (page) */
};
int sr_ctx_set(sr_ctx *ctx, int param, uint64_t value);

/* A guard of 0 bytes selects the default: one page. */
#define SR_GUARD_DEFAULT	0
/* "Not known on this tier" for byte counts. */
#define SR_UNKNOWN		((size_t)-1)

/* Stacks */
int sr_stack_create(sr_ctx *ctx, size_t size, size_t guard, void *user_data,
		    sr_stack **stackp);
int sr_stack_destroy(sr_stack *stack);
void *sr_stack_base(const sr_stack *stack);	/* lowest usable byte */
void *sr_stack_top(const sr_stack *stack);	/* one past the highest */
size_t sr_stack_size(const sr_stack *stack);	/* top - base */
size_t sr_stack_guard(const sr_stack *stack);	/* guard bytes below base */
void *sr_stack_user_data(const sr_stack *stack);
int sr_stack_trim(sr_stack *stack, void *sp, size_t keep);
int sr_stack_committed(sr_stack *stack, size_t *committed);
int sr_committed_total(sr_ctx *ctx, uint64_t *total);

/* Arenas: nslots stacks of slot_size bytes each, guard at each bottom */
int sr_arena_create(sr_ctx *ctx, size_t slot_size, size_t nslots, size_t guard,
		    void *user_data, sr_arena **arenap);
int sr_arena_destroy(sr_arena *arena);
void *sr_arena_slot_base(const sr_arena *arena, size_t slot);
void *sr_arena_slot_top(const sr_arena *arena, size_t slot);
size_t sr_arena_slot_size(const sr_arena *arena);
size_t sr_arena_nslots(const sr_arena *arena);
size_t sr_arena_guard(const sr_arena *arena);
void *sr_arena_user_data(const sr_arena *arena);
int sr_arena_trim(sr_arena *arena, void *sp, size_t keep);

/* Batched trim: one system call per up to trim_vec_max entries (stackres) */
struct sr_trim {
	sr_stack *stack;	/* the stack, or NULL with arena */
	sr_arena *arena;	/* with stack NULL: the arena whose slot holds sp */
	void *sp;		/* keep what lies above sp - keep */
	size_t keep;
	size_t committed;	/* out: committed after the trim, or SR_UNKNOWN */
	int error;		/* out: 0 or a negative errno value */
	int reserved0;
	uintptr_t reserved[2];
};
int sr_trim_batch(sr_ctx *ctx, struct sr_trim *trims, unsigned int count);

/*
 * Budgeted trim: trims holds the stacks a runtime could trim now (parked at
 * sp, or idle with sp at the top).  Nothing is trimmed while the context's
 * committed total is at most high; above it the entries that free the most
 * are trimmed first, until the total is down to low (hysteresis), none of
 * them below warm bytes under its top.  high 0: trim every entry.
 * Entries trimmed get error 0 (and committed as sr_trim_batch() says), the
 * others SR_TRIM_SKIPPED (committed: as read, or SR_UNKNOWN) or the error.
 */
#define SR_TRIM_SKIPPED		1
struct sr_budget {
	uint64_t high;		/* trim only above this many committed bytes */
	uint64_t low;		/* then down to this (0, or above high: high) */
	size_t warm;		/* bytes under each top kept committed (0: none) */
	uint64_t total;		/* in: 0, or the total just read; out: the total used */
	uint64_t freed;		/* out: committed bytes the trims dropped (estimate) */
	uintptr_t reserved[2];
};
int sr_trim_budget(sr_ctx *ctx, struct sr_trim *trims, unsigned int count,
		   struct sr_budget *budget);

/* Faults */
enum sr_fault_kind {
	SR_FAULT_NOT_OURS = 0,	/* not in a guard of this context's stacks */
	SR_FAULT_OVERFLOW = 1,	/* in the guard of a stack or arena slot */
	SR_FAULT_GROW_FAILED = 2	/* stackres: above the guard, not committed */
};

struct sr_fault {
	int kind;		/* enum sr_fault_kind */
	int on_stack;		/* the interrupted sp lies in the same stack */
	void *addr;		/* the faulting address (si_addr) */
	void *user_data;	/* of the stack or arena */
	sr_stack *stack;	/* the stack, or NULL (arena slot, or unknown) */
	sr_arena *arena;	/* the arena, or NULL */
	size_t slot;		/* the slot of the arena */
	void *guard_start;	/* the guard of that stack or slot */
	void *guard_end;
	size_t committed;	/* stackres reservation: bytes committed; else 0 */
	void *sp;		/* the interrupted stack pointer, or NULL */
	uintptr_t reserved[4];
};

/* siginfo is a siginfo_t *, ucontext a ucontext_t * (may be NULL). */
int sr_classify(sr_ctx *ctx, const void *siginfo, const void *ucontext,
		struct sr_fault *fault);

/*
 * Called by the library's SIGSEGV handler, on the thread's alternate signal
 * stack, for a fault sr_classify() attributes to ctx.  It should leave the
 * overflowed stack (siglongjmp(), a context switch); if it returns, the
 * library reports the fault on stderr and lets it kill the process.
 */
typedef void (*sr_fault_fn)(const struct sr_fault *fault, void *siginfo,
			    void *ucontext, void *arg);
int sr_install_segv_handler(sr_ctx *ctx, sr_fault_fn fn, void *arg);
int sr_uninstall_segv_handler(sr_ctx *ctx);
/* The calling thread's alternate signal stack (size 0: 64 KiB). */
int sr_thread_altstack(size_t size);
int sr_thread_altstack_free(void);

/* Records */
enum sr_event_type {
	SR_EVENT_GROW = 1,
	SR_EVENT_WATERMARK = 2,
	SR_EVENT_OVERFLOW = 3,
	SR_EVENT_FAILED = 4,
	SR_EVENT_LOST = 5
};

enum sr_event_origin {
	SR_ORIGIN_NONE = 0,
	SR_ORIGIN_USER = 1,	/* the task, in user mode */
	SR_ORIGIN_KERNEL = 2,	/* the kernel on its behalf (read(), a signal frame) */
	SR_ORIGIN_IFETCH = 3	/* an instruction fetch */
};

#define SR_EVENT_SLOT		(1U << 0)	/* slot is an arena slot */
#define SR_EVENT_SYNTHETIC	(1U << 1)	/* made by the library's handler */

struct sr_event {
	int type;		/* enum sr_event_type */
	int origin;		/* enum sr_event_origin */
	unsigned int flags;	/* SR_EVENT_* */
	int err;		/* FAILED: positive errno */
	uint32_t tid;		/* the faulting thread */
	uint32_t id;		/* the module's id (0: none) */
	void *addr;		/* the faulting address */
	uint64_t committed;	/* bytes committed after it; LOST: records lost */
	void *user_data;	/* of the stack or arena */
	size_t slot;		/* with SR_EVENT_SLOT */
};

typedef void (*sr_event_fn)(const struct sr_event *event, void *arg);

struct sr_event_handlers {
	sr_event_fn grow;
	sr_event_fn watermark;
	sr_event_fn overflow;
	sr_event_fn failed;
	sr_event_fn lost;
	sr_event_fn other;	/* a type this version does not know */
	void *arg;
};

int sr_events_fd(sr_ctx *ctx);
int sr_events_read(sr_ctx *ctx, const struct sr_event_handlers *handlers,
		   int nonblocking);

/* Thread stacks, recycled after exit_free(2) or the CLONE_CHILD_CLEARTID store */
#define SR_TCACHE_ALTSTACK	(1U << 0)	/* carve a sigaltstack off each stack */

enum sr_tcache_mode {
	SR_TCACHE_EXIT_FREE = 1,	/* the exit_free(2) word */
	SR_TCACHE_CLEARTID = 2		/* the kernel's clear_child_tid store */
};

struct sr_tcache_stats {
	uint64_t created;	/* stacks made */
	uint64_t reused;	/* stacks taken from the cache */
	uint64_t waits;		/* takes that waited for the word */
	uint64_t spawned;	/* threads started by sr_tcache_spawn() */
	uint64_t out;		/* stacks taken and not yet back */
	uint64_t reserved[3];
};

int sr_exit_free_available(void);
int sr_tcache_create(sr_ctx *ctx, size_t size, size_t guard, void *user_data,
		     unsigned int flags, sr_tcache **cachep);
int sr_tcache_destroy(sr_tcache *cache);
int sr_tcache_mode(const sr_tcache *cache);
int sr_tcache_get(sr_tcache *cache, sr_tstack **tsp);
void sr_tcache_put(sr_tstack *ts);
void *sr_tstack_top(const sr_tstack *ts);
sr_stack *sr_tstack_stack(const sr_tstack *ts);
SR_NORETURN void sr_tstack_exit(sr_tstack *ts, int status);
int sr_tcache_spawn(sr_tcache *cache, int (*fn)(void *), void *arg,
		    sr_tstack **tsp);
int sr_tcache_wait_idle(sr_tcache *cache);
int sr_tcache_trim(sr_tcache *cache, size_t keep);
int sr_tcache_stats(const sr_tcache *cache, struct sr_tcache_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* STACKRES_STACKRES_H */
