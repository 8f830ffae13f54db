// SPDX-License-Identifier: MIT
/*
 * Stacks and arenas on each tier, trimming, committed bytes.
 *
 *   stackres       STACKRES_IOC_REGISTER / ARENA with STACKRES_MAP: the
 *                  module maps, commits on demand, trims (TRIM_ADDR,
 *                  TRIM_VEC) and counts (QUERY, LIST).
 *   guard markers  one read/write MAP_NORESERVE mapping, faulted in lazily,
 *                  MADV_GUARD_INSTALL at the bottom of it (of each slot);
 *                  trimming is MADV_DONTNEED, counting is mincore().
 *   mprotect       the same with mprotect(PROT_NONE) guards (a VMA more
 *                  per guard, so vm.max_map_count bounds the count).
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <linux/stackres.h>

#include "internal.h"

static int ioctl_err(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

/*
 * The lower tiers' mapping: read/write, guard(s) below each stack.  With an
 * alignment, map that much more and unmap what lies outside the aligned part.
 */
static int map_guarded(sr_ctx *ctx, size_t stride, size_t n, size_t guard,
		       uintptr_t *startp)
{
	int e = errno, r = 0;
	size_t len = stride * n, extra = ctx->align > ctx->page ? ctx->align - ctx->page : 0, i;
	char *p, *m;

	if (len > SIZE_MAX - extra)
		return -ENOMEM;
	m = mmap(NULL, len + extra, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (m == MAP_FAILED) {
		r = -errno;
		errno = e;
		return r;
	}
	p = m;
	if (extra) {
		p = (char *)(((uintptr_t)m + extra) & ~(uintptr_t)(ctx->align - 1));
		if (p > m)
			munmap(m, p - m);
		if (m + len + extra > p + len)
			munmap(p + len, m + len + extra - (p + len));
	}
	/* Stacks are small and sparse: a huge page would be mostly waste. */
	madvise(p, len, MADV_NOHUGEPAGE);
	for (i = 0; i < n && !r; i++) {
		char *g = p + i * stride;

		if (ctx->tier == SR_TIER_GUARD_MARKERS)
			r = madvise(g, guard, MADV_GUARD_INSTALL) ? -errno : 0;
		else
			r = mprotect(g, guard, PROT_NONE) ? -errno : 0;
	}
	if (r)
		munmap(p, len);
	else
		*startp = (uintptr_t)p;
	errno = e;
	return r;
}

int sr_stack_make(sr_ctx *ctx, size_t size, size_t guard, size_t commit,
		  void *user_data, sr_stack **stackp)
{
	uintptr_t start = 0;
	uint32_t id = 0;
	sr_stack *st;
	size_t len;
	int r;

	if (!ctx || !stackp || !size || size > SIZE_MAX / 2 || guard > SIZE_MAX / 2)
		return -EINVAL;
	size = sr_page_up(ctx, size);
	guard = guard ? sr_page_up(ctx, guard) : ctx->page;
	len = size + guard;

	sr_lock(&ctx->lock);
	st = sr_stack_alloc(ctx);
	sr_unlock(&ctx->lock);
	if (!st)
		return -ENOMEM;

	if (ctx->tier == SR_TIER_STACKRES) {
		struct stackres_reg reg;

		memset(&reg, 0, sizeof(reg));
		reg.len = len;
		reg.guard = guard;
		reg.commit = commit < size ? commit : size;
		reg.chunk = ctx->chunk;
		reg.watermark = ctx->watermark;
		reg.flags = STACKRES_MAP | (ctx->notify_grow ? STACKRES_NOTIFY_GROW : 0);
		reg.user_data = (uintptr_t)user_data;
		reg.align = ctx->align;
		r = ioctl_err(ctx->fd, STACKRES_IOC_REGISTER, &reg);
		start = reg.start;
		id = reg.id;
	} else {
		r = map_guarded(ctx, len, 1, guard, &start);
	}

	sr_lock(&ctx->lock);
	if (!r) {
		sr_seq_write_begin(&st->seq);
		st->start = start;
		st->len = len;
		st->guard = guard;
		st->id = id;
		st->user_data = user_data;
		st->ctx = ctx;
		st->ts = NULL;
		st->live = 1;
		sr_seq_write_end(&st->seq);
		r = sr_table_add(ctx, st);
		if (!r) {
			st->prev = NULL;
			st->next = ctx->live_stacks;
			if (st->next)
				st->next->prev = st;
			ctx->live_stacks = st;
			ctx->nstacks++;
		} else {
			st->live = 0;
		}
	}
	if (r)
		sr_stack_free(ctx, st);
	sr_unlock(&ctx->lock);
	if (r) {
		if (start && ctx->tier == SR_TIER_STACKRES)
			ioctl(ctx->fd, STACKRES_IOC_UNREGISTER, &id);
		if (start)
			sr_unmap((void *)start, len);
		return r;
	}
	*stackp = st;
	return 0;
}

SR_API int sr_stack_create(sr_ctx *ctx, size_t size, size_t guard, void *user_data,
			   sr_stack **stackp)
{
	if (!ctx)
		return -EINVAL;
	return sr_stack_make(ctx, size, guard, ctx->commit, user_data, stackp);
}

/* Also for thread stacks (tcache.c checks st->ts itself). */
int sr_stack_unmake(sr_stack *st)
{
	sr_ctx *ctx = st->ctx;
	uintptr_t start = st->start;
	size_t len = st->len;
	uint32_t id = st->id;

	sr_lock(&ctx->lock);
	sr_table_del(ctx, st);
	if (st->prev)
		st->prev->next = st->next;
	else
		ctx->live_stacks = st->next;
	if (st->next)
		st->next->prev = st->prev;
	sr_seq_write_begin(&st->seq);
	st->live = 0;
	sr_seq_write_end(&st->seq);
	sr_stack_free(ctx, st);
	ctx->nstacks--;
	sr_unlock(&ctx->lock);
	/* Unregister first: the id is free again at once. */
	if (ctx->tier == SR_TIER_STACKRES)
		ioctl(ctx->fd, STACKRES_IOC_UNREGISTER, &id);
	sr_unmap((void *)start, len);
	return 0;
}

SR_API int sr_stack_destroy(sr_stack *st)
{
	if (!st || !st->live)
		return -EINVAL;
	if (st->ts)
		return -EBUSY;		/* a thread cache's: sr_tcache_destroy() */
	return sr_stack_unmake(st);
}

SR_API void *sr_stack_base(const sr_stack *st)
{
	return (void *)(st->start + st->guard);
}

SR_API void *sr_stack_top(const sr_stack *st)
{
	return (void *)(st->start + st->len);
}

SR_API size_t sr_stack_size(const sr_stack *st)
{
	return st->len - st->guard;
}

SR_API size_t sr_stack_guard(const sr_stack *st)
{
	return st->guard;
}

SR_API void *sr_stack_user_data(const sr_stack *st)
{
	return st->user_data;
}

/* The lower tiers' trim: MADV_DONTNEED on whole pages in [base, sp - keep). */
static int trim_dontneed(sr_ctx *ctx, uintptr_t base, uintptr_t sp, size_t keep)
{
	uintptr_t cut;
	int e = errno, r = 0;

	if (keep >= sp - base)
		return 0;
	cut = (sp - keep) & ~(uintptr_t)(ctx->page - 1);
	if (cut > base && madvise((void *)base, cut - base, MADV_DONTNEED))
		r = -errno;
	errno = e;
	return r;
}

static int trim_addr(sr_ctx *ctx, uintptr_t sp, size_t keep, size_t *committed)
{
	struct stackres_trim t;
	int r;

	memset(&t, 0, sizeof(t));
	t.flags = STACKRES_TRIM_ADDR;
	t.sp = sp;
	t.keep = keep;
	r = ioctl_err(ctx->fd, STACKRES_IOC_TRIM, &t);
	if (!r && committed)
		*committed = t.committed;
	return r;
}

SR_API int sr_stack_trim(sr_stack *st, void *spp, size_t keep)
{
	uintptr_t sp = (uintptr_t)spp, base, top;

	if (!st || !st->live)
		return -EINVAL;
	base = st->start + st->guard;
	top = st->start + st->len;
	if (sp < base || sp > top)
		return -EINVAL;
	if (st->ctx->tier == SR_TIER_STACKRES)
		return trim_addr(st->ctx, sp, keep, NULL);
	return trim_dontneed(st->ctx, base, sp, keep);
}

/* Bytes of [from, to) present in memory, by mincore(): a page per byte. */
int sr_stack_resident(sr_ctx *ctx, uintptr_t from, uintptr_t to, uint64_t *bytes)
{
	unsigned char vec[512];
	size_t n, i;
	uint64_t sum = 0;
	int e = errno;

	for (; from < to; from += n * ctx->page) {
		n = (to - from) / ctx->page;
		if (n > sizeof(vec))
			n = sizeof(vec);
		if (mincore((void *)from, n * ctx->page, vec)) {
			int r = -errno;

			errno = e;
			return r;
		}
		for (i = 0; i < n; i++)
			sum += vec[i] & 1;
	}
	*bytes = sum * ctx->page;
	return 0;
}

SR_API int sr_stack_committed(sr_stack *st, size_t *committed)
{
	uint64_t b;
	int r;

	if (!st || !st->live || !committed)
		return -EINVAL;
	if (st->ctx->tier == SR_TIER_STACKRES) {
		struct stackres_query q;

		memset(&q, 0, sizeof(q));
		q.id = st->id;
		r = ioctl_err(st->ctx->fd, STACKRES_IOC_QUERY, &q);
		if (!r)
			*committed = q.committed;
		return r;
	}
	r = sr_stack_resident(st->ctx, st->start + st->guard, st->start + st->len, &b);
	if (!r)
		*committed = b;
	return r;
}

SR_API int sr_committed_total(sr_ctx *ctx, uint64_t *total)
{
	uint64_t sum = 0, b;
	sr_stack *st;
	uint32_t i;
	int r = 0;

	if (!ctx || !total)
		return -EINVAL;
	if (ctx->tier == SR_TIER_STACKRES) {
		struct stackres_list l;

		memset(&l, 0, sizeof(l));
		r = ioctl_err(ctx->fd, STACKRES_IOC_LIST, &l);
		if (!r)
			*total = l.committed;
		return r;
	}
	sr_lock(&ctx->lock);
	for (st = ctx->live_stacks; st && !r; st = st->next) {
		r = sr_stack_resident(ctx, st->start + st->guard, st->start + st->len, &b);
		sum += b;
	}
	for (i = 0; i < atomic_load(&ctx->narena_slots) && !r; i++) {
		sr_arena *a = atomic_load(&ctx->arenas[i]);

		if (!a)
			continue;
		r = sr_stack_resident(ctx, a->start, a->start + a->slot_size * a->nslots, &b);
		sum += b;
	}
	sr_unlock(&ctx->lock);
	if (!r)
		*total = sum;
	return r;
}

/* ---- arenas ---- */

SR_API int sr_arena_create(sr_ctx *ctx, size_t slot_size, size_t nslots, size_t guard,
			   void *user_data, sr_arena **arenap)
{
	uintptr_t start = 0;
	uint32_t id = 0, i;
	sr_arena *a;
	int r;

	if (!ctx || !arenap || !slot_size || !nslots || slot_size > SIZE_MAX / 2)
		return -EINVAL;
	slot_size = sr_page_up(ctx, slot_size);
	guard = guard ? sr_page_up(ctx, guard) : ctx->page;
	if (guard >= slot_size || nslots > SIZE_MAX / slot_size)
		return -EINVAL;

	sr_lock(&ctx->lock);
	a = ctx->free_arenas;
	if (a) {
		ctx->free_arenas = a->next_free;
	} else if (atomic_load(&ctx->narena_slots) < SR_MAX_ARENAS) {
		i = atomic_load(&ctx->narena_slots);
		a = &ctx->arena_pool[i];
		a->index = i;
		atomic_store(&ctx->narena_slots, i + 1);
	}
	sr_unlock(&ctx->lock);
	if (!a)
		return -ENOSPC;

	if (ctx->tier == SR_TIER_STACKRES) {
		struct stackres_arena ar;

		memset(&ar, 0, sizeof(ar));
		ar.slot = slot_size;
		ar.nslots = nslots;
		ar.guard = guard;
		ar.flags = STACKRES_MAP;
		ar.user_data = (uintptr_t)user_data;
		ar.align = ctx->align;
		r = ioctl_err(ctx->fd, STACKRES_IOC_ARENA, &ar);
		start = ar.start;
		id = ar.id;
	} else {
		r = map_guarded(ctx, slot_size, nslots, guard, &start);
	}

	sr_lock(&ctx->lock);
	if (r) {
		a->next_free = ctx->free_arenas;
		ctx->free_arenas = a;
	} else {
		sr_seq_write_begin(&a->seq);
		a->start = start;
		a->slot_size = slot_size;
		a->nslots = nslots;
		a->guard = guard;
		a->user_data = user_data;
		a->id = id;
		a->ctx = ctx;
		a->live = 1;
		sr_seq_write_end(&a->seq);
		atomic_store_explicit(&ctx->arenas[a->index], a, memory_order_release);
		ctx->narenas++;
	}
	sr_unlock(&ctx->lock);
	if (r)
		return r;
	*arenap = a;
	return 0;
}

SR_API int sr_arena_destroy(sr_arena *a)
{
	sr_ctx *ctx;
	uintptr_t start;
	size_t len;
	uint32_t id;

	if (!a || !a->live)
		return -EINVAL;
	ctx = a->ctx;
	start = a->start;
	len = a->slot_size * a->nslots;
	id = a->id;
	sr_lock(&ctx->lock);
	atomic_store(&ctx->arenas[a->index], NULL);
	sr_seq_write_begin(&a->seq);
	a->live = 0;
	sr_seq_write_end(&a->seq);
	a->next_free = ctx->free_arenas;
	ctx->free_arenas = a;
	ctx->narenas--;
	sr_unlock(&ctx->lock);
	if (ctx->tier == SR_TIER_STACKRES)
		ioctl(ctx->fd, STACKRES_IOC_UNREGISTER, &id);
	sr_unmap((void *)start, len);
	return 0;
}

SR_API void *sr_arena_slot_base(const sr_arena *a, size_t slot)
{
	if (!a || slot >= a->nslots)
		return NULL;
	return (void *)(a->start + slot * a->slot_size + a->guard);
}

SR_API void *sr_arena_slot_top(const sr_arena *a, size_t slot)
{
	if (!a || slot >= a->nslots)
		return NULL;
	return (void *)(a->start + (slot + 1) * a->slot_size);
}

SR_API size_t sr_arena_slot_size(const sr_arena *a)
{
	return a->slot_size;
}

SR_API size_t sr_arena_nslots(const sr_arena *a)
{
	return a->nslots;
}

SR_API size_t sr_arena_guard(const sr_arena *a)
{
	return a->guard;
}

SR_API void *sr_arena_user_data(const sr_arena *a)
{
	return a->user_data;
}

/* The slot whose (bottom, top] holds sp, and its usable base; -EINVAL if none. */
static int arena_slot_of(const sr_arena *a, uintptr_t sp, uintptr_t *base)
{
	size_t slot;

	if (sp <= a->start || sp - a->start > a->slot_size * a->nslots)
		return -EINVAL;
	slot = (sp - a->start - 1) / a->slot_size;
	*base = a->start + slot * a->slot_size + a->guard;
	return sp < *base ? -EINVAL : 0;
}

SR_API int sr_arena_trim(sr_arena *a, void *spp, size_t keep)
{
	uintptr_t sp = (uintptr_t)spp, base;
	int r;

	if (!a || !a->live)
		return -EINVAL;
	r = arena_slot_of(a, sp, &base);
	if (r)
		return r;
	if (a->ctx->tier == SR_TIER_STACKRES)
		return trim_addr(a->ctx, sp, keep, NULL);
	return trim_dontneed(a->ctx, base, sp, keep);
}

/* ---- batched trim ---- */

#define SR_VEC_LOCAL	64

static int check_trim(sr_ctx *ctx, const struct sr_trim *t, uintptr_t *base)
{
	uintptr_t sp = (uintptr_t)t->sp;

	if (t->stack) {
		const sr_stack *st = t->stack;

		if (!st->live || st->ctx != ctx)
			return -EINVAL;
		*base = st->start + st->guard;
		return sp < *base || sp > st->start + st->len ? -EINVAL : 0;
	}
	if (!t->arena || !t->arena->live || t->arena->ctx != ctx)
		return -EINVAL;
	return arena_slot_of(t->arena, sp, base);
}

SR_API int sr_trim_batch(sr_ctx *ctx, struct sr_trim *v, unsigned int count)
{
	struct stackres_trim e[SR_VEC_LOCAL];
	unsigned int map[SR_VEC_LOCAL];
	unsigned int i = 0, n, k, ok = 0;
	uintptr_t base;

	if (!ctx || (count && !v))
		return -EINVAL;
	if (ctx->tier != SR_TIER_STACKRES) {
		for (i = 0; i < count; i++) {
			v[i].committed = SR_UNKNOWN;
			v[i].error = check_trim(ctx, &v[i], &base);
			if (!v[i].error)
				v[i].error = trim_dontneed(ctx, base, (uintptr_t)v[i].sp,
							   v[i].keep);
			ok += !v[i].error;
		}
		return ok;
	}
	while (i < count) {
		unsigned int max = ctx->trim_vec_max < SR_VEC_LOCAL ?
			ctx->trim_vec_max : SR_VEC_LOCAL;
		struct stackres_trim_vec tv;
		int r;

		/* Gather up to max valid entries; invalid ones fail alone. */
		for (n = 0; i < count && n < max; i++) {
			v[i].committed = SR_UNKNOWN;
			v[i].error = check_trim(ctx, &v[i], &base);
			if (v[i].error)
				continue;
			memset(&e[n], 0, sizeof(e[n]));
			e[n].flags = STACKRES_TRIM_ADDR;
			e[n].sp = (uintptr_t)v[i].sp;
			e[n].keep = v[i].keep;
			map[n++] = i;
		}
		/* An entry that fails stops the call there: go on after it. */
		for (k = 0; k < n; k += tv.done + (r != 0)) {
			memset(&tv, 0, sizeof(tv));
			tv.trims = (uintptr_t)&e[k];
			tv.count = n - k;
			tv.entry_size = sizeof(e[0]);
			r = ioctl_err(ctx->fd, STACKRES_IOC_TRIM_VEC, &tv);
			if (tv.done > n - k)
				tv.done = 0;	/* cannot happen; never loop on it */
			for (unsigned int j = k; j < k + tv.done; j++) {
				v[map[j]].committed = e[j].committed;
				ok++;
			}
			if (r) {
				if (k + tv.done < n)
					v[map[k + tv.done]].error = r;
				else
					return r;	/* the call itself failed */
			}
		}
	}
	return ok;
}

/* ---- budgeted trim ---- */

/*
 * Where an entry's trim cuts (cut) and the keep that makes the kernel cut
 * there: below sp - keep, but never into the warm part under the top.
 */
static int budget_cut(sr_ctx *ctx, const struct sr_trim *t, size_t warm, uintptr_t *top,
		      uintptr_t *cut, size_t *keep)
{
	uintptr_t sp = (uintptr_t)t->sp, base, c;
	int r = check_trim(ctx, t, &base);

	if (r)
		return r;
	*top = t->stack ? t->stack->start + t->stack->len :
		base - t->arena->guard + t->arena->slot_size;
	c = t->keep >= sp - base ? base : (sp - t->keep) & ~(uintptr_t)(ctx->page - 1);
	if (c < base)
		c = base;
	if (warm && (*top - base <= warm ? base : *top - warm) < c)
		c = *top - base <= warm ? base : (*top - warm) & ~(uintptr_t)(ctx->page - 1);
	*cut = c;
	*keep = sp - c;
	return 0;
}

/*
 * Committed bytes of each entry.  stackres: a TRIM_VEC whose every cut lies
 * at the stack's base trims nothing, takes no mmap_lock and writes the
 * committed bytes back (one call for up to trim_vec_max stacks, no QUERY
 * each); below it mincore().
 */
static void budget_read(sr_ctx *ctx, struct sr_trim *v, unsigned int count)
{
	struct sr_trim loc[SR_VEC_LOCAL];
	unsigned int i, n, k;
	uintptr_t base;
	uint64_t b;

	if (ctx->tier != SR_TIER_STACKRES) {
		for (i = 0; i < count; i++) {
			v[i].error = check_trim(ctx, &v[i], &base);
			if (!v[i].error)
				v[i].error = sr_stack_resident(ctx, base, v[i].stack ?
					v[i].stack->start + v[i].stack->len :
					base - v[i].arena->guard + v[i].arena->slot_size, &b);
			v[i].committed = v[i].error ? SR_UNKNOWN : (size_t)b;
		}
		return;
	}
	for (i = 0; i < count; i += n) {
		n = count - i < SR_VEC_LOCAL ? count - i : SR_VEC_LOCAL;
		for (k = 0; k < n; k++) {
			loc[k] = v[i + k];
			loc[k].keep = SIZE_MAX;
		}
		if (sr_trim_batch(ctx, loc, n) < 0)
			for (k = 0; k < n; k++)
				loc[k].committed = SR_UNKNOWN;
		for (k = 0; k < n; k++) {
			v[i + k].committed = loc[k].committed;
			v[i + k].error = loc[k].error;
		}
	}
}

/* Bytes a trim of v would free: what lies committed below its cut. */
static uint64_t budget_gain(sr_ctx *ctx, const struct sr_trim *v, size_t warm)
{
	uintptr_t top, cut;
	size_t keep;

	if (v->error < 0 || v->committed == SR_UNKNOWN ||
	    budget_cut(ctx, v, warm, &top, &cut, &keep))
		return 0;
	return v->committed > top - cut ? v->committed - (top - cut) : 0;
}

static unsigned int bucket_of(uint64_t gain, size_t page)
{
	unsigned int k = 0;

	for (gain /= page; gain; gain >>= 1)
		k++;
	return k;			/* 0: nothing to gain; else 1 + log2(pages) */
}

/* Trim the entries chosen (want(v[i])), up to SR_VEC_LOCAL at a time. */
static int budget_trim(sr_ctx *ctx, struct sr_trim *v, unsigned int count,
		       struct sr_budget *b, unsigned int min_bucket, uint64_t need)
{
	struct sr_trim loc[SR_VEC_LOCAL];
	unsigned int idx[SR_VEC_LOCAL], i = 0, n, k, pass;
	uint64_t gain;
	int done = 0, r;

	/* Pass 0: the buckets above min_bucket, all; pass 1: min_bucket until need is met. */
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < count;) {
			for (n = 0; i < count && n < SR_VEC_LOCAL; i++) {
				uintptr_t top, cut;
				size_t keep;
				unsigned int bk;

				gain = budget_gain(ctx, &v[i], b->warm);
				bk = bucket_of(gain, ctx->page);
				if (!bk || (pass == 0 ? bk <= min_bucket : bk != min_bucket))
					continue;
				if (pass == 1 && b->freed >= need)
					break;
				budget_cut(ctx, &v[i], b->warm, &top, &cut, &keep);
				loc[n] = v[i];
				loc[n].keep = keep;
				idx[n++] = i;
				b->freed += gain;
			}
			if (!n)
				break;
			r = sr_trim_batch(ctx, loc, n);
			if (r < 0)
				return r;
			for (k = 0; k < n; k++) {
				v[idx[k]].committed = loc[k].committed;
				v[idx[k]].error = loc[k].error;
				done += !loc[k].error;
			}
		}
	}
	return done;
}

/* No budget: every entry, as sr_trim_batch() would, but sparing warm bytes. */
static int trim_all(sr_ctx *ctx, struct sr_trim *v, unsigned int count, size_t warm)
{
	struct sr_trim loc[SR_VEC_LOCAL];
	unsigned int i, n, k;
	uintptr_t top, cut;
	int done = 0, r;

	if (!warm)
		return sr_trim_batch(ctx, v, count);
	for (i = 0; i < count; i += n) {
		n = count - i < SR_VEC_LOCAL ? count - i : SR_VEC_LOCAL;
		for (k = 0; k < n; k++) {
			loc[k] = v[i + k];
			/* an invalid entry keeps its keep: sr_trim_batch() fails it */
			budget_cut(ctx, &v[i + k], warm, &top, &cut, &loc[k].keep);
		}
		r = sr_trim_batch(ctx, loc, n);
		if (r < 0)
			return r;
		done += r;
		for (k = 0; k < n; k++) {
			v[i + k].committed = loc[k].committed;
			v[i + k].error = loc[k].error;
		}
	}
	return done;
}

SR_API int sr_trim_budget(sr_ctx *ctx, struct sr_trim *v, unsigned int count,
			  struct sr_budget *b)
{
	uint64_t sum[65] = { 0 }, total, low, need, acc = 0;
	unsigned int i, k;
	int r;

	if (!ctx || !b || (count && !v))
		return -EINVAL;
	total = b->total;
	b->total = UINT64_MAX;
	b->freed = 0;
	if (!b->high)
		return trim_all(ctx, v, count, b->warm);
	/* A caller that has just read the total (to decide to call) saves a read. */
	if (!total) {
		r = sr_committed_total(ctx, &total);
		if (r)
			return r;
	}
	b->total = total;
	for (i = 0; i < count; i++) {
		v[i].committed = SR_UNKNOWN;
		v[i].error = SR_TRIM_SKIPPED;
	}
	if (total <= b->high || !count)
		return 0;
	low = b->low && b->low <= b->high ? b->low : b->high;
	need = total - low;
	budget_read(ctx, v, count);
	for (i = 0; i < count; i++)
		if (!v[i].error)
			v[i].error = SR_TRIM_SKIPPED;
	/* The largest gains first: buckets by powers of two of the pages gained. */
	for (i = 0; i < count; i++)
		sum[bucket_of(budget_gain(ctx, &v[i], b->warm), ctx->page)] +=
			budget_gain(ctx, &v[i], b->warm);
	for (k = 64; k > 0; k--) {
		acc += sum[k];
		if (acc >= need)
			break;
	}
	if (!k)
		k = 1;			/* not enough even with all: trim all */
	return budget_trim(ctx, v, count, b, k, need);
}
