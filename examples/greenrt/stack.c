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
#include <limits.h>
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
static _Atomic uint32_t held;		/* dirty stacks being trimmed (futex word) */
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
			    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
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
 * A free stack_max-aligned block for the stacks that are plain mmaps: map
 * twice the size and unmap what lies outside the aligned part.
 * (Reservations get theirs from REGISTER's align.)
 */
static uintptr_t aligned_block(size_t len, int prot)
{
	char *m = gr_mmap(NULL, 2 * len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
	uintptr_t a;

	if (!m)
		return 0;
	a = ((uintptr_t)m + len - 1) & ~(uintptr_t)(len - 1);
	if (a > (uintptr_t)m)
		gr_munmap(m, a - (uintptr_t)m);
	if ((uintptr_t)m + 2 * len > a + len)
		gr_munmap((void *)(a + len), (uintptr_t)m + 2 * len - (a + len));
	return a;
}

static int stack_map(struct gr_stack *st)
{
	const struct gr_config *cfg = &gr_rt.cfg;

	if (gr_rt.skind == GR_SK_STACKRES) {
		/* user_data: records and QUERY answers for it lead back to st. */
		struct stackres_reg reg = {
			.len = cfg->stack_max,
			.guard = cfg->stack_guard,
			.commit = cfg->stack_commit,
			.watermark = cfg->watermark,
			.flags = STACKRES_MAP,
			.user_data = (uintptr_t)st,
			.align = cfg->stack_max,
		};
		int r = gr_sys3(SYS_ioctl, gr_rt.srfd, STACKRES_IOC_REGISTER, &reg);

		if (r)
			return r;
		st->start = (uintptr_t)reg.start;
	} else if (gr_rt.skind == GR_SK_SIGSEGV) {
		/* All PROT_NONE but the initial commit; the guard stays so. */
		uintptr_t a = aligned_block(cfg->stack_max, PROT_NONE);

		if (!a)
			return -ENOMEM;
		st->rw_low = a + cfg->stack_max - cfg->stack_commit;
		if (gr_mprotect((void *)st->rw_low, cfg->stack_commit,
				PROT_READ | PROT_WRITE)) {
			gr_munmap((void *)a, cfg->stack_max);
			return -ENOMEM;
		}
		st->start = a;
	} else {
		uintptr_t a = aligned_block(cfg->stack_max, PROT_READ | PROT_WRITE);
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
	}
	st->len = cfg->stack_max;
	st->guard = cfg->stack_guard;
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
		st = clean;
		if (st) {
			clean = st->next;
		} else {
			st = dirty;
			if (st)
				dirty = st->next;
		}
		h = atomic_load(&held);
		gr_unlock(&gr_rt.stack_lock);
		if (st) {
			gr_stat_inc(&gr_rt.st_stacks_reused);
			return st;
		}
		if (!h)
			return stack_new();
		/* The manager is trimming cached stacks: wait for them, make none. */
		gr_futex_wait(&held, h, -1);
	}
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

struct gr_stack *gr_stack_at(uint32_t i)
{
	return i < atomic_load(&gr_rt.nstacks) ? &stack_arr[i] : NULL;
}

/* The lowest address a trim at sp keeps (the kernel's rule for TRIM). */
static uintptr_t trim_cut(const struct gr_stack *st, uintptr_t sp, size_t keep)
{
	uintptr_t low = st->start + st->guard;

	return sp - low > keep ? (sp - keep) & ~(GR_PAGE - 1) : low;
}

/*
 * The stacks that are not reservations: would a trim free anything?  It
 * changes page tables (and so flushes TLBs).  SIGSEGV-grown stacks know it
 * from rw_low; guarded RW mmaps only from the lowest sp they were parked at
 * since their last trim; committed stacks never trim.
 */
static bool trim_useful(const struct gr_stack *st, uintptr_t cut)
{
	if (gr_rt.skind == GR_SK_COMMITTED)
		return false;
	if (gr_rt.skind == GR_SK_SIGSEGV)
		return st->rw_low < cut;
	return !st->low_sp || st->low_sp < cut;	/* 0: unknown, trim */
}

static int stack_trim(struct gr_stack *st, uintptr_t cut)
{
	uintptr_t low = st->start + st->guard;
	int r;

	if (gr_rt.skind == GR_SK_SIGSEGV) {
		/* Only the read/write part has pages; it becomes PROT_NONE again. */
		r = gr_sys3(SYS_madvise, st->rw_low, cut - st->rw_low, MADV_DONTNEED);
		if (!r)
			r = gr_mprotect((void *)st->rw_low, cut - st->rw_low, PROT_NONE);
		if (!r)
			st->rw_low = cut;
		return r;
	}
	/* Guarded RW mmap: free the pages; the mapping stays read/write. */
	return gr_sys3(SYS_madvise, low, cut - low, MADV_DONTNEED);
}

/*
 * Reservations: no question first.  The n trims go to the kernel in
 * STACKRES_IOC_TRIM_VEC calls, each entry by address (TRIM_ADDR: the
 * reservation holding sp), under one mmap_lock hold; an entry with nothing
 * committed below its cut costs no mmap_lock at all.  The committed size
 * each entry writes back says which stacks now end at the cut (done[i]):
 * those trimmed there, or that ended exactly there already (without asking
 * first the two look alike).  An entry that fails is skipped.
 */
static unsigned int trim_reservations(struct gr_stack *const *st, const uintptr_t *sp,
				      size_t keep, unsigned int n, bool *done)
{
	struct stackres_trim t[GR_TRIM_BATCH];
	struct stackres_trim_vec v;
	unsigned int i, from, cut = 0;
	int r;

	for (i = 0; i < n; i++) {
		t[i] = (struct stackres_trim){
			.flags = STACKRES_TRIM_ADDR, .sp = sp[i], .keep = keep,
		};
		done[i] = false;
	}
	for (from = 0; from < n; from += v.done + (r != 0)) {
		v = (struct stackres_trim_vec){
			.trims = (uintptr_t)&t[from],
			.count = n - from < gr_rt.trim_vec_max ? n - from : gr_rt.trim_vec_max,
			.entry_size = sizeof(t[0]),
		};
		r = gr_sys3(SYS_ioctl, gr_rt.srfd, STACKRES_IOC_TRIM_VEC, &v);
		for (i = from; i < from + v.done; i++) {
			uintptr_t c = trim_cut(st[i], sp[i], keep);

			done[i] = t[i].committed == gr_stack_top(st[i]) - c;
			cut += done[i];
		}
	}
	return cut;
}

unsigned int gr_stacks_trim(struct gr_stack *const *st, const uintptr_t *sp, size_t keep,
			    unsigned int n, bool *done)
{
	unsigned int i, cut = 0;

	if (gr_rt.skind == GR_SK_STACKRES)
		return trim_reservations(st, sp, keep, n, done);
	for (i = 0; i < n; i++) {
		uintptr_t c = trim_cut(st[i], sp[i], keep);

		done[i] = trim_useful(st[i], c) && !stack_trim(st[i], c);
		cut += done[i];
	}
	return cut;
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

/* Committed bytes of a stack that is not a reservation (LIST has those). */
size_t gr_stack_committed(const struct gr_stack *st)
{
	return gr_rt.skind == GR_SK_SIGSEGV ? gr_stack_top(st) - st->rw_low :
		st->len - st->guard;
}

/*
 * Manager: trim every dirty cached stack back to the initial commit, up to
 * GR_TRIM_BATCH at a time: off the dirty list while trimmed, so no new
 * coroutine starts on one meanwhile (gr_stack_get() waits for them rather
 * than make a new stack).
 */
void gr_stacks_trim_cached(void)
{
	struct gr_stack *st[GR_TRIM_BATCH];
	uintptr_t sp[GR_TRIM_BATCH];
	bool done[GR_TRIM_BATCH];
	unsigned int i, n;

	do {
		gr_lock(&gr_rt.stack_lock);
		for (n = 0; n < GR_TRIM_BATCH && dirty; n++) {
			st[n] = dirty;
			sp[n] = gr_stack_top(dirty);
			dirty = dirty->next;
		}
		atomic_store(&held, n);
		gr_unlock(&gr_rt.stack_lock);
		if (!n)
			return;
		atomic_fetch_add(&gr_rt.st_trims_cached,
				 gr_stacks_trim(st, sp, gr_rt.cfg.stack_commit, n, done));
		gr_lock(&gr_rt.stack_lock);
		for (i = 0; i < n; i++) {
			atomic_store(&st[i]->dirty, 0);
			st[i]->next = clean;
			clean = st[i];
		}
		atomic_store(&held, 0);
		gr_unlock(&gr_rt.stack_lock);
		gr_futex_wake(&held, INT_MAX);
	} while (n == GR_TRIM_BATCH);
}

void gr_stacks_destroy(void)
{
	uint32_t i, n = atomic_load(&gr_rt.nstacks);

	for (i = 0; i < n; i++)
		gr_munmap((void *)stack_arr[i].start, stack_arr[i].len);
	gr_munmap(stack_arr, page_up((size_t)gr_rt.cfg.max_stacks * sizeof(*stack_arr)));
	gr_munmap((void *)stack_hash, hash_bytes);
	stack_arr = NULL;
	stack_hash = NULL;
	clean = dirty = NULL;
	atomic_store(&gr_rt.nstacks, 0);
}
