// SPDX-License-Identifier: GPL-2.0
/*
 * Coroutine stacks: libstackres stacks (stackres reservations natively,
 * lazily faulted read/write stacks with a guard below stackres), a registry
 * that finds a stack from an address, and a cache of free stacks.  For
 * comparison (gr_config.stacks) also fully committed stacks (libstackres's
 * lower tier, populated) and stacks grown by the SIGSEGV handler (PROT_NONE
 * until touched, as a runtime does without stackres: greenrt's own).
 *
 * Stacks are reused rather than unmapped: a finished coroutine's stack goes
 * back on the cache list, warm; the manager's budgeted trim
 * (sr_trim_budget(), gr_config.trim_budget) decides which cached and parked
 * stacks give pages back.
 */
#include <errno.h>
#include <limits.h>
#include <sys/mman.h>

#include "internal.h"

#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0x4000
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static struct gr_stack *stack_arr;	/* registry: gr_rt.cfg.max_stacks entries */
static struct gr_stack *cache;		/* free stacks, last freed first (warmest) */
static _Atomic uint32_t held;		/* cached stacks being trimmed (futex word) */
/*
 * The stack a coroutine runs on, from its stack pointer, without TLS (raw
 * clone workers have none of their own): stacks are stack_max-aligned, so
 * sp gives the block, and an open-addressing table maps the block's number
 * to the registry index + 1 (0: empty).  Entries are only added (under
 * stack_lock) until gr_stacks_destroy(), so lookups need no lock.
 */
static _Atomic uint32_t *stack_hash;
static uint32_t hash_mask;
static size_t hash_bytes;

static size_t page_up(size_t v)
{
	return (v + GR_PAGE - 1) & ~(GR_PAGE - 1);
}

int gr_stacks_init(void)
{
	size_t n = 2;

	while (n < 2 * (size_t)gr_rt.cfg.max_stacks)
		n <<= 1;
	hash_mask = n - 1;
	hash_bytes = page_up(n * sizeof(*stack_hash));
	stack_hash = gr_mmap(NULL, hash_bytes, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
	stack_arr = gr_mmap(NULL, page_up((size_t)gr_rt.cfg.max_stacks * sizeof(*stack_arr)),
			    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
	return stack_arr && stack_hash ? 0 : -ENOMEM;
}

static uint32_t block_of(uintptr_t addr)
{
	return (uint32_t)(addr / gr_rt.cfg.stack_max);
}

struct gr_stack *gr_stack_of(uintptr_t addr)
{
	uintptr_t start = addr & ~(uintptr_t)(gr_rt.cfg.stack_max - 1);
	uint32_t h, i;

	for (h = block_of(addr); ; h++) {
		i = atomic_load_explicit(&stack_hash[h & hash_mask], memory_order_acquire);
		if (!i)
			return NULL;
		if (stack_arr[i - 1].start == start)
			return &stack_arr[i - 1];
	}
}

uintptr_t gr_stack_top(const struct gr_stack *st)
{
	return st->start + st->len;
}

/*
 * GR_SK_SIGSEGV: a free stack_max-aligned PROT_NONE block, the top
 * stack_commit read/write: map twice the size and unmap what lies outside
 * the aligned part.
 */
static int sigsegv_map(struct gr_stack *st)
{
	size_t len = gr_rt.cfg.stack_max, commit = gr_rt.cfg.stack_commit;
	char *m = gr_mmap(NULL, 2 * len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
	uintptr_t a;

	if (!m)
		return -ENOMEM;
	a = ((uintptr_t)m + len - 1) & ~(uintptr_t)(len - 1);
	if (a > (uintptr_t)m)
		gr_munmap(m, a - (uintptr_t)m);
	if ((uintptr_t)m + 2 * len > a + len)
		gr_munmap((void *)(a + len), (uintptr_t)m + 2 * len - (a + len));
	st->rw_low = a + len - commit;
	if (gr_mprotect((void *)st->rw_low, commit, PROT_READ | PROT_WRITE)) {
		gr_munmap((void *)a, len);
		return -ENOMEM;
	}
	st->start = a;
	return 0;
}

static int stack_map(struct gr_stack *st)
{
	const struct gr_config *cfg = &gr_rt.cfg;
	uintptr_t base;
	int r;

	st->len = cfg->stack_max;
	st->guard = cfg->stack_guard;
	st->sr = NULL;
	if (gr_rt.skind == GR_SK_SIGSEGV)
		return sigsegv_map(st);
	/* user_data: a fault or a record on it leads back to st. */
	r = sr_stack_create(gr_rt.ctx, cfg->stack_max - cfg->stack_guard, cfg->stack_guard,
			    st, &st->sr);
	if (r)
		return r;
	base = (uintptr_t)sr_stack_base(st->sr);
	st->start = base - cfg->stack_guard;
	/* Committed: every page allocated now (touched if the kernel is old). */
	if (gr_rt.skind == GR_SK_COMMITTED &&
	    gr_sys3(SYS_madvise, base, gr_stack_top(st) - base, MADV_POPULATE_WRITE))
		for (; base < gr_stack_top(st); base += GR_PAGE)
			*(volatile char *)base = 0;
	return 0;
}

static struct gr_stack *stack_new(void)
{
	struct gr_stack *st;
	uint32_t i, h;

	gr_lock(&gr_rt.stack_lock);
	i = atomic_load(&gr_rt.nstacks);
	if (i >= gr_rt.cfg.max_stacks) {
		gr_unlock(&gr_rt.stack_lock);
		return NULL;
	}
	st = &stack_arr[i];
	if (stack_map(st)) {
		gr_unlock(&gr_rt.stack_lock);
		return NULL;
	}
	st->index = i;
	for (h = block_of(st->start); atomic_load(&stack_hash[h & hash_mask]); h++)
		;
	/* Published last: readers see whole entries only. */
	atomic_store_explicit(&stack_hash[h & hash_mask], i + 1, memory_order_release);
	atomic_store(&gr_rt.nstacks, i + 1);
	gr_unlock(&gr_rt.stack_lock);
	gr_stat_inc(&gr_rt.st_stacks_created);
	return st;
}

struct gr_stack *gr_stack_get(void)
{
	struct gr_stack *st;
	uint32_t h;

	for (;;) {
		gr_lock(&gr_rt.stack_lock);
		st = cache;
		if (st)
			cache = st->next;
		h = atomic_load(&held);
		gr_unlock(&gr_rt.stack_lock);
		if (st) {
			atomic_store(&st->dirty, 1);
			gr_stat_inc(&gr_rt.st_stacks_reused);
			return st;
		}
		if (!h)
			break;
		/* The manager is trimming cached stacks: wait for them, make none. */
		gr_futex_wait(&held, h, -1);
	}
	st = stack_new();
	if (st)
		atomic_store(&st->dirty, 1);
	return st;
}

void gr_stack_put(struct gr_stack *st)
{
	atomic_store(&st->owner, NULL);
	atomic_fetch_add_explicit(&gr_rt.trim_events, 1, memory_order_relaxed);
	gr_lock(&gr_rt.stack_lock);
	st->next = cache;
	cache = st;
	gr_unlock(&gr_rt.stack_lock);
}

struct gr_stack *gr_stack_at(uint32_t i)
{
	return i < atomic_load(&gr_rt.nstacks) ? &stack_arr[i] : NULL;
}

/* ---- GR_SK_SIGSEGV: growth and trim by hand ---- */

/*
 * Make the stack read/write from addr (a fault address between the guard
 * and the read/write part) up to that part, at least GR_SIGSEGV_STEP at a
 * time.  Runs in the SIGSEGV handler, on the worker that runs the stack's
 * coroutine, so nothing else changes rw_low meanwhile (the manager trims
 * parked and cached stacks only).  False if addr is not such an address or
 * mprotect fails.
 */
bool gr_stack_grow(struct gr_stack *st, uintptr_t addr)
{
	uintptr_t low = st->start + st->guard, lo = addr & ~(GR_PAGE - 1);

	if (addr < low || addr >= st->rw_low)
		return false;
	if (st->rw_low - lo < GR_SIGSEGV_STEP)
		lo = st->rw_low - low > GR_SIGSEGV_STEP ? st->rw_low - GR_SIGSEGV_STEP : low;
	if (gr_mprotect((void *)lo, st->rw_low - lo, PROT_READ | PROT_WRITE))
		return false;
	st->rw_low = lo;
	return true;
}

/*
 * The budget rule of sr_trim_budget() on rw_low, which is what these
 * stacks have committed: nothing at or under the budget; above it every
 * candidate (a like policy, without the largest-first order).
 */
static unsigned int sigsegv_trim(struct gr_stack *const *st, const uintptr_t *sp,
				 const size_t *keep, unsigned int n, bool *done, uint64_t total)
{
	unsigned int i, cut = 0;

	if (!total)
		total = gr_committed_sum();
	for (i = 0; i < n; i++)
		done[i] = false;
	if (gr_rt.cfg.trim_budget && total <= gr_rt.cfg.trim_budget)
		return 0;
	for (i = 0; i < n; i++) {
		uintptr_t low = st[i]->start + st[i]->guard, c;
		size_t k = keep[i];

		if (gr_rt.cfg.trim_warm && sp[i] - (gr_stack_top(st[i]) - gr_rt.cfg.trim_warm) > k)
			k = sp[i] - (gr_stack_top(st[i]) - gr_rt.cfg.trim_warm);
		c = sp[i] - low > k ? (sp[i] - k) & ~(GR_PAGE - 1) : low;
		if (st[i]->rw_low >= c)
			continue;
		/* Only the read/write part has pages; it becomes PROT_NONE again. */
		if (gr_sys3(SYS_madvise, st[i]->rw_low, c - st[i]->rw_low, MADV_DONTNEED) ||
		    gr_mprotect((void *)st[i]->rw_low, c - st[i]->rw_low, PROT_NONE))
			continue;
		st[i]->rw_low = c;
		done[i] = true;
		cut++;
	}
	return cut;
}

/* Committed bytes of every coroutine stack. */
uint64_t gr_committed_sum(void)
{
	uint32_t i, n = atomic_load(&gr_rt.nstacks);
	uint64_t sum = 0;

	/* Committed stacks hold all of it: no need to ask (mincore) for it. */
	if (gr_rt.skind == GR_SK_COMMITTED)
		return (uint64_t)n * (gr_rt.cfg.stack_max - gr_rt.cfg.stack_guard);
	if (gr_rt.skind != GR_SK_SIGSEGV)
		return sr_committed_total(gr_rt.ctx, &sum) ? 0 : sum;
	for (i = 0; i < n; i++)
		sum += gr_stack_top(&stack_arr[i]) - stack_arr[i].rw_low;
	return sum;
}

/* Committed bytes of one stack, for a kill report. */
size_t gr_stack_committed(const struct gr_stack *st)
{
	size_t c = 0;

	if (gr_rt.skind == GR_SK_SIGSEGV)
		return gr_stack_top(st) - st->rw_low;
	return sr_stack_committed(st->sr, &c) ? 0 : c;
}

/*
 * Trim st[i] at sp[i] keeping keep[i] bytes below, under the budget
 * (gr_config.trim_budget, trim_warm); done[i]: it was cut.  total: the
 * committed total the caller has just read, or 0.  Library stacks:
 * one sr_trim_budget() call, which reads the committed total first and
 * trims nothing under the budget; the reservations' trims go to the kernel
 * by address in TRIM_VEC batches, with no QUERY first.
 */
unsigned int gr_stacks_trim(struct gr_stack *const *st, const uintptr_t *sp,
			    const size_t *keep, unsigned int n, bool *done, uint64_t total)
{
	static struct sr_trim t[GR_TRIM_BATCH];	/* the manager's only */
	struct sr_budget b = {
		.high = gr_rt.cfg.trim_budget,
		.low = gr_rt.cfg.trim_low,
		.warm = gr_rt.cfg.trim_warm,
		.total = total,
	};
	unsigned int i, cut = 0;

	if (!n || gr_rt.skind == GR_SK_COMMITTED) {
		for (i = 0; i < n; i++)
			done[i] = false;
		return 0;
	}
	if (gr_rt.skind == GR_SK_SIGSEGV)
		return sigsegv_trim(st, sp, keep, n, done, total);
	for (i = 0; i < n; i++)
		t[i] = (struct sr_trim){
			.stack = st[i]->sr, .sp = (void *)sp[i], .keep = keep[i],
		};
	sr_trim_budget(gr_rt.ctx, t, n, &b);
	for (i = 0; i < n; i++) {
		done[i] = !t[i].error;
		cut += done[i];
	}
	return cut;
}

/*
 * Manager: the cached stacks used since their last trim, with the parked
 * ones the caller collected (st[0..n)), up to GR_TRIM_BATCH in all: off the
 * cache list while trimmed, so no new coroutine starts on one meanwhile
 * (gr_stack_get() waits for them rather than make a new stack).  Returns
 * how many of the parked ones were cut (done[]).
 */
unsigned int gr_stacks_trim_with_cached(struct gr_stack **st, uintptr_t *sp, size_t *keep,
					unsigned int n, bool *done, uint64_t total)
{
	struct gr_stack **pp, *s, *taken = NULL;
	unsigned int i, m = n, parked = 0;

	gr_lock(&gr_rt.stack_lock);
	for (pp = &cache; (s = *pp) != NULL && m < GR_TRIM_BATCH;) {
		if (!atomic_load(&s->dirty)) {
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		s->next = taken;
		taken = s;
		st[m] = s;
		sp[m] = gr_stack_top(s);
		keep[m++] = gr_rt.cfg.stack_commit;
	}
	atomic_store(&held, m - n);
	gr_unlock(&gr_rt.stack_lock);
	gr_stacks_trim(st, sp, keep, m, done, total);
	for (i = 0; i < n; i++)
		parked += done[i];
	for (i = n; i < m; i++) {
		if (done[i]) {
			gr_stat_inc(&gr_rt.st_trims_cached);
			atomic_store(&st[i]->dirty, 0);
		}
	}
	if (m > n) {
		gr_lock(&gr_rt.stack_lock);
		while (taken) {
			s = taken;
			taken = s->next;
			s->next = cache;
			cache = s;
		}
		atomic_store(&held, 0);
		gr_unlock(&gr_rt.stack_lock);
		gr_futex_wake(&held, INT_MAX);
	}
	return parked;
}

void gr_stacks_destroy(void)
{
	uint32_t i, n = atomic_load(&gr_rt.nstacks);

	for (i = 0; i < n; i++) {
		if (stack_arr[i].sr)
			sr_stack_destroy(stack_arr[i].sr);
		else
			gr_munmap((void *)stack_arr[i].start, stack_arr[i].len);
	}
	gr_munmap(stack_arr, page_up((size_t)gr_rt.cfg.max_stacks * sizeof(*stack_arr)));
	gr_munmap((void *)stack_hash, hash_bytes);
	stack_arr = NULL;
	stack_hash = NULL;
	cache = NULL;
	atomic_store(&gr_rt.nstacks, 0);
}
