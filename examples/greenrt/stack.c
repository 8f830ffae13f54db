// SPDX-License-Identifier: GPL-2.0
/*
 * Coroutine stacks: stackres reservations (native) or guarded read/write
 * mmaps (fallback), a registry of every stack and a cache of free ones.
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
 * part (fallback) or give it all back and map the aligned part with
 * STACKRES_MAP at that fixed address (native; EEXIST if another thread took
 * it meanwhile, then we try again).
 */
static uintptr_t aligned_block(size_t len, bool keep)
{
	char *m = gr_mmap(NULL, 2 * len, keep ? PROT_READ | PROT_WRITE : PROT_NONE,
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

	if (gr_rt.mode == GR_MODE_NATIVE) {
		struct stackres_reg reg;

		for (tries = 0; tries < 16 && r == -EEXIST; tries++) {
			reg = (struct stackres_reg){
				.start = aligned_block(cfg->stack_max, false),
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
	} else {
		uintptr_t a = aligned_block(cfg->stack_max, true);

		if (!a)
			return -ENOMEM;
		if (gr_mprotect((void *)a, cfg->stack_guard, PROT_NONE)) {
			gr_munmap((void *)a, cfg->stack_max);
			return -ENOMEM;
		}
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
	if (gr_rt.mode == GR_MODE_NATIVE) {
		struct stackres_trim t = { .id = st->id, .sp = sp, .keep = keep };

		return gr_sys3(SYS_ioctl, gr_rt.srfd, STACKRES_IOC_TRIM, &t);
	}
	/* Fallback: free the pages; the mapping stays read/write. */
	end = sp - low > keep ? (sp - keep) & ~(GR_PAGE - 1) : low;
	if (end <= low)
		return 0;
	return gr_sys3(SYS_madvise, low, end - low, MADV_DONTNEED);
}

/*
 * Would a TRIM at sp free anything?  A TRIM changes page tables (and so
 * flushes TLBs on every CPU running the process); skip it when nothing lies
 * below sp - keep.  Native: QUERY's committed is exact.  Fallback: the lowest
 * sp this stack was parked at since its last trim is our only hint.
 */
bool gr_stack_trim_useful(struct gr_stack *st, uintptr_t sp, size_t keep)
{
	uintptr_t cut = sp - st->start > keep + st->guard ?
		(sp - keep) & ~(GR_PAGE - 1) : st->start + st->guard;
	size_t committed;

	if (gr_rt.mode == GR_MODE_NATIVE)
		return !gr_stack_query(st, &committed) &&
			committed > gr_stack_top(st) - cut;
	return !st->low_sp || st->low_sp < cut;	/* 0: unknown, trim */
}

int gr_stack_query(const struct gr_stack *st, size_t *committed)
{
	if (gr_rt.mode == GR_MODE_NATIVE) {
		struct stackres_query q = { .id = st->id };
		int r = gr_sys3(SYS_ioctl, gr_rt.srfd, STACKRES_IOC_QUERY, &q);

		if (r)
			return r;
		*committed = q.committed;
		return 0;
	}
	*committed = st->len - st->guard;
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
