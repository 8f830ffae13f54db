// SPDX-License-Identifier: GPL-2.0
/*
 * Coroutine stacks: stackres reservations (native) or guarded read/write
 * mmaps (fallback), a registry of every stack and a cache of free ones.
 * For comparison (gr_config.stacks) also fully committed stacks and stacks
 * grown by the SIGSEGV handler (PROT_NONE until touched, as a runtime does
 * without stackres).
 *
 * Stacks are reused rather than unmapped: a finished coroutine's stack goes
 * on the dirty list; the manager trims it back to the initial commit and
 * moves it to the clean list.  gr_stack_get() prefers clean stacks but takes a
 * dirty one rather than making a new reservation (it just has more committed).
 */
#include <errno.h>
#include <linux/stackres.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "internal.h"

#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0x4000
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static struct gr_stack *stack_arr;	/* registry: gr_rt.cfg.max_stacks entries */
static struct gr_stack *clean, *dirty;

int gr_stacks_init(void)
{
	size_t sz = (size_t)gr_rt.cfg.max_stacks * sizeof(*stack_arr);

	stack_arr = gr_mmap(NULL, (sz + GR_PAGE - 1) & ~(GR_PAGE - 1),
			    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
	return stack_arr ? 0 : -ENOMEM;
}

uintptr_t gr_stack_top(const struct gr_stack *st)
{
	return st->start + st->len;
}

/*
 * Find a free stack_max-aligned block: map twice the size, keep the aligned
 * part (plain mmap stacks, mapped with prot) or give it all back and map the
 * aligned part with STACKRES_MAP at that fixed address (reservations; EEXIST
 * if another thread took it meanwhile, then we try again).
 */
static uintptr_t aligned_block(size_t len, int prot, bool keep)
{
	char *m = gr_mmap(NULL, 2 * len, keep ? prot : PROT_NONE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
	uintptr_t a;

	if (!m)
		return 0;
	a = ((uintptr_t)m + len - 1) & ~(uintptr_t)(len - 1);
	if (!keep) {
		gr_munmap(m, 2 * len);
		return a;
	}
	if (a > (uintptr_t)m)
		gr_munmap(m, a - (uintptr_t)m);
	if ((uintptr_t)m + 2 * len > a + len)
		gr_munmap((void *)(a + len), (uintptr_t)m + 2 * len - (a + len));
	return a;
}

static int stack_map(struct gr_stack *st)
{
	const struct gr_config *cfg = &gr_rt.cfg;
	int r = -EEXIST, tries;

	if (gr_rt.skind == GR_SK_STACKRES) {
		struct stackres_reg reg;

		for (tries = 0; tries < 16 && r == -EEXIST; tries++) {
			reg = (struct stackres_reg){
				.start = aligned_block(cfg->stack_max, PROT_NONE, false),
				.len = cfg->stack_max,
				.guard = cfg->stack_guard,
				.commit = cfg->stack_commit,
				.watermark = cfg->watermark,
				.flags = STACKRES_MAP,
			};
			if (!reg.start)
				return -ENOMEM;
			r = gr_sys3(SYS_ioctl, gr_rt.srfd, STACKRES_IOC_REGISTER, &reg);
		}
		if (r)
			return r;
		st->start = (uintptr_t)reg.start;
		st->id = reg.id;
	} else if (gr_rt.skind == GR_SK_SIGSEGV) {
		/* All PROT_NONE but the initial commit; the guard stays so. */
		uintptr_t a = aligned_block(cfg->stack_max, PROT_NONE, true);

		if (!a)
			return -ENOMEM;
		st->rw_low = a + cfg->stack_max - cfg->stack_commit;
		if (gr_mprotect((void *)st->rw_low, cfg->stack_commit,
				PROT_READ | PROT_WRITE)) {
			gr_munmap((void *)a, cfg->stack_max);
			return -ENOMEM;
		}
		st->start = a;
		st->id = 0;
	} else {
		uintptr_t a = aligned_block(cfg->stack_max, PROT_READ | PROT_WRITE, true);
		uintptr_t low = a + cfg->stack_guard, p;

		if (!a)
			return -ENOMEM;
		if (gr_mprotect((void *)a, cfg->stack_guard, PROT_NONE)) {
			gr_munmap((void *)a, cfg->stack_max);
			return -ENOMEM;
		}
		/* Committed: every page allocated now (touched if the kernel is old). */
		if (gr_rt.skind == GR_SK_COMMITTED &&
		    gr_sys3(SYS_madvise, low, a + cfg->stack_max - low, MADV_POPULATE_WRITE))
			for (p = low; p < a + cfg->stack_max; p += GR_PAGE)
				*(volatile char *)p = 0;
		st->start = a;
		st->id = 0;
	}
	st->len = cfg->stack_max;
	st->guard = cfg->stack_guard;
	return 0;
}

static struct gr_stack *stack_new(void)
{
	struct gr_stack_top *top;
	struct gr_stack *st;
	uint32_t i;

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
	/* Published last: readers of the registry see whole entries only. */
	atomic_store(&gr_rt.nstacks, i + 1);
	gr_unlock(&gr_rt.stack_lock);

	/* The top page is committed from the start (REGISTER's commit). */
	top = (struct gr_stack_top *)(gr_stack_top(st) - GR_TOP_RESERVED);
	top->magic = GR_TOP_MAGIC;
	top->stack = st;
	gr_stat_inc(&gr_rt.st_stacks_created);
	return st;
}

struct gr_stack *gr_stack_get(void)
{
	struct gr_stack *st;

	gr_lock(&gr_rt.stack_lock);
	st = clean;
	if (st) {
		clean = st->next;
	} else {
		st = dirty;
		if (st)
			dirty = st->next;
	}
	gr_unlock(&gr_rt.stack_lock);
	if (st) {
		gr_stat_inc(&gr_rt.st_stacks_reused);
		return st;
	}
	return stack_new();
}

void gr_stack_put(struct gr_stack *st)
{
	atomic_store(&st->owner, NULL);
	atomic_store(&st->dirty, 1);
	st->low_sp = 0;
	gr_lock(&gr_rt.stack_lock);
	st->next = dirty;
	dirty = st;
	gr_unlock(&gr_rt.stack_lock);
}

struct gr_stack *gr_stack_by_id(uint32_t id)
{
	uint32_t i, n = atomic_load(&gr_rt.nstacks);

	for (i = 0; i < n; i++)
		if (stack_arr[i].id == id)
			return &stack_arr[i];
	return NULL;
}

struct gr_stack *gr_stack_at(uint32_t i)
{
	return i < atomic_load(&gr_rt.nstacks) ? &stack_arr[i] : NULL;
}

int gr_stack_trim(struct gr_stack *st, uintptr_t sp, size_t keep)
{
	uintptr_t low = st->start + st->guard, end;

	if (sp < low || sp > gr_stack_top(st))
		return -EINVAL;
	if (gr_rt.skind == GR_SK_STACKRES) {
		struct stackres_trim t = { .id = st->id, .sp = sp, .keep = keep };

		return gr_sys3(SYS_ioctl, gr_rt.srfd, STACKRES_IOC_TRIM, &t);
	}
	if (gr_rt.skind == GR_SK_COMMITTED)
		return 0;	/* fixed stacks: nothing is ever given back */
	end = sp - low > keep ? (sp - keep) & ~(GR_PAGE - 1) : low;
	if (gr_rt.skind == GR_SK_SIGSEGV) {
		/* Only the read/write part has pages; it becomes PROT_NONE again. */
		int r;

		if (end <= st->rw_low)
			return 0;
		r = gr_sys3(SYS_madvise, st->rw_low, end - st->rw_low, MADV_DONTNEED);
		if (!r)
			r = gr_mprotect((void *)st->rw_low, end - st->rw_low, PROT_NONE);
		if (!r)
			st->rw_low = end;
		return r;
	}
	/* Guarded RW mmap: free the pages; the mapping stays read/write. */
	if (end <= low)
		return 0;
	return gr_sys3(SYS_madvise, low, end - low, MADV_DONTNEED);
}

/*
 * GR_SK_SIGSEGV: make the stack read/write from addr (a fault address
 * between the guard and the read/write part) up to that part, at least
 * GR_SIGSEGV_STEP at a time.  Runs in the SIGSEGV handler, on the worker that
 * runs the stack's coroutine, so nothing else changes rw_low meanwhile (the
 * manager trims parked and cached stacks only).  False if addr is not such
 * an address or mprotect fails.
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
 * Would a TRIM at sp free anything?  A TRIM changes page tables (and so
 * flushes TLBs on every CPU running the process); skip it when nothing lies
 * below sp - keep.  Reservations: QUERY's committed is exact; SIGSEGV-grown
 * stacks: rw_low is.  Guarded RW mmaps: the lowest sp this stack was parked
 * at since its last trim is our only hint.  Committed stacks: never.
 */
bool gr_stack_trim_useful(struct gr_stack *st, uintptr_t sp, size_t keep)
{
	uintptr_t cut = sp - st->start > keep + st->guard ?
		(sp - keep) & ~(GR_PAGE - 1) : st->start + st->guard;
	size_t committed;

	if (gr_rt.skind == GR_SK_STACKRES)
		return !gr_stack_query(st, &committed) &&
			committed > gr_stack_top(st) - cut;
	if (gr_rt.skind == GR_SK_COMMITTED)
		return false;
	if (gr_rt.skind == GR_SK_SIGSEGV)
		return st->rw_low < cut;
	return !st->low_sp || st->low_sp < cut;	/* 0: unknown, trim */
}

int gr_stack_query(const struct gr_stack *st, size_t *committed)
{
	if (gr_rt.skind == GR_SK_STACKRES) {
		struct stackres_query q = { .id = st->id };
		int r = gr_sys3(SYS_ioctl, gr_rt.srfd, STACKRES_IOC_QUERY, &q);

		if (r)
			return r;
		*committed = q.committed;
		return 0;
	}
	*committed = gr_rt.skind == GR_SK_SIGSEGV ? gr_stack_top(st) - st->rw_low :
		     st->len - st->guard;
	return 0;
}

/* Manager: trim every dirty cached stack back to the initial commit. */
void gr_stacks_trim_cached(void)
{
	struct gr_stack *st;

	for (;;) {
		gr_lock(&gr_rt.stack_lock);
		st = dirty;
		if (st)
			dirty = st->next;
		gr_unlock(&gr_rt.stack_lock);
		if (!st)
			return;
		if (gr_stack_trim_useful(st, gr_stack_top(st), gr_rt.cfg.stack_commit) &&
		    !gr_stack_trim(st, gr_stack_top(st), gr_rt.cfg.stack_commit))
			gr_stat_inc(&gr_rt.st_trims_cached);
		atomic_store(&st->dirty, 0);
		gr_lock(&gr_rt.stack_lock);
		st->next = clean;
		clean = st;
		gr_unlock(&gr_rt.stack_lock);
	}
}

void gr_stacks_destroy(void)
{
	uint32_t i, n = atomic_load(&gr_rt.nstacks);

	for (i = 0; i < n; i++)
		gr_munmap((void *)stack_arr[i].start, stack_arr[i].len);
	gr_munmap(stack_arr, ((size_t)gr_rt.cfg.max_stacks * sizeof(*stack_arr) +
			      GR_PAGE - 1) & ~(GR_PAGE - 1));
	stack_arr = NULL;
	clean = dirty = NULL;
	atomic_store(&gr_rt.nstacks, 0);
}
