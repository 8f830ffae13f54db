// SPDX-License-Identifier: MIT
/*
 * Contexts: choosing the tier, parameters, object pools and the lock-free
 * lookup by address (see internal.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/stackres.h>

#include "internal.h"

SR_API int sr_version(void)
{
	return SR_VERSION;
}

void *sr_map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void sr_unmap(void *p, size_t len)
{
	int e = errno;

	if (p)
		munmap(p, len);
	errno = e;
}

SR_API const char *sr_tier_name(int tier)
{
	switch (tier) {
	case SR_TIER_STACKRES:
		return "stackres";
	case SR_TIER_GUARD_MARKERS:
		return "guard markers";
	case SR_TIER_MPROTECT:
		return "mprotect";
	default:
		return "unknown";
	}
}

static void reason_add(sr_ctx *ctx, const char *fmt, const char *a, const char *b)
{
	size_t n = strlen(ctx->reason);

	if (n && n + 2 < sizeof(ctx->reason)) {
		strcpy(ctx->reason + n, "; ");
		n += 2;
	}
	snprintf(ctx->reason + n, sizeof(ctx->reason) - n, fmt, a, b);
}

/* The features this version of the library relies on, from ABI version 1. */
static int stackres_open(sr_ctx *ctx)
{
	const uint64_t need_ioctls = 0x3fe;	/* REGISTER .. LIST */
	struct stackres_features f;
	uint32_t rs = STACKRES_RECORD_SIZE_VER1;
	int fd, e;

	fd = open("/dev/stackres", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		e = errno;
		reason_add(ctx, "stackres: /dev/stackres: %s%s", strerror(e),
			   e == ENOENT || e == ENODEV || e == ENXIO ?
			   " (stackres.ko not loaded)" : "");
		return -e;
	}
	memset(&f, 0, sizeof(f));
	if (ioctl(fd, STACKRES_IOC_FEATURES, &f)) {
		e = errno;
		reason_add(ctx, "stackres: %s%s", e == ENOTTY ?
			   "the module is ABI version 0 (no STACKRES_IOC_FEATURES)" :
			   "STACKRES_IOC_FEATURES: ", e == ENOTTY ? "" : strerror(e));
		close(fd);
		return -e;
	}
	if (f.version < 1 || f.record_size < STACKRES_RECORD_SIZE_VER1 ||
	    (f.ioctls & need_ioctls) != need_ioctls ||
	    !(f.trim_flags & STACKRES_TRIM_ADDR) ||
	    !(f.query_flags & STACKRES_QUERY_ANY) ||
	    f.reg_size < STACKRES_REG_SIZE_VER1 || f.arena_size < STACKRES_ARENA_SIZE_VER1 ||
	    f.trim_size < STACKRES_TRIM_SIZE_VER1 || f.query_size < STACKRES_QUERY_SIZE_VER1) {
		reason_add(ctx, "stackres: the module lacks a version 1 feature%s%s", "", "");
		close(fd);
		return -EOPNOTSUPP;
	}
	if (ioctl(fd, STACKRES_IOC_RECORD_SIZE, &rs)) {
		e = errno;
		reason_add(ctx, "stackres: STACKRES_IOC_RECORD_SIZE: %s%s", strerror(e), "");
		close(fd);
		return -e;
	}
	ctx->fd = fd;
	ctx->trim_vec_max = f.trim_vec_max ? f.trim_vec_max : 1;
	return 0;
}

/* MADV_GUARD_INSTALL on a scratch page: EINVAL means the kernel lacks it. */
static int guard_markers_probe(sr_ctx *ctx)
{
	void *p = sr_map_anon(ctx->page);
	int e = 0;

	if (!p) {
		e = errno;
	} else {
		if (madvise(p, ctx->page, MADV_GUARD_INSTALL))
			e = errno;
		sr_unmap(p, ctx->page);
	}
	if (e)
		reason_add(ctx, "guard markers: MADV_GUARD_INSTALL: %s%s", strerror(e),
			   e == EINVAL ? " (Linux before 6.13)" : "");
	return -e;
}

static int tier_from_env(int *tier)
{
	const char *v = getenv("LIBSTACKRES_TIER");

	if (!v || !*v)
		return 0;
	if (!strcmp(v, "stackres"))
		*tier = SR_TIER_STACKRES;
	else if (!strcmp(v, "guard") || !strcmp(v, "guard-markers"))
		*tier = SR_TIER_GUARD_MARKERS;
	else if (!strcmp(v, "mprotect"))
		*tier = SR_TIER_MPROTECT;
	else
		return -EINVAL;
	return 1;
}

SR_API int sr_ctx_create(int max_tier, unsigned int flags, sr_ctx **ctxp)
{
	int cap = max_tier ? max_tier : SR_TIER_STACKRES, env = SR_TIER_STACKRES;
	int r, from_env;
	sr_ctx *ctx;

	if (!ctxp || max_tier < 0 || max_tier > SR_TIER_STACKRES ||
	    (flags & ~SR_CTX_EXACT_TIER))
		return -EINVAL;
	from_env = tier_from_env(&env);
	if (from_env < 0)
		return from_env;
	ctx = sr_map_anon(sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->fd = ctx->efd = -1;
	ctx->page = sysconf(_SC_PAGESIZE);
	ctx->arena_pool = sr_map_anon(SR_MAX_ARENAS * sizeof(sr_arena));
	if (!ctx->arena_pool) {
		sr_unmap(ctx, sizeof(*ctx));
		return -ENOMEM;
	}
	for (r = 0; r < SR_RING; r++)
		atomic_store(&ctx->ring[r].seq, r);

	if (cap > SR_TIER_MPROTECT && from_env && env < cap) {
		cap = env;
		reason_add(ctx, "LIBSTACKRES_TIER=%s%s", getenv("LIBSTACKRES_TIER"), "");
	} else if (max_tier && max_tier < SR_TIER_STACKRES) {
		reason_add(ctx, "max_tier is %s%s", sr_tier_name(max_tier), "");
	}
	if (cap >= SR_TIER_STACKRES && !stackres_open(ctx))
		ctx->tier = SR_TIER_STACKRES;
	else if (cap >= SR_TIER_GUARD_MARKERS && !guard_markers_probe(ctx))
		ctx->tier = SR_TIER_GUARD_MARKERS;
	else
		ctx->tier = SR_TIER_MPROTECT;

	if ((flags & SR_CTX_EXACT_TIER) && max_tier && ctx->tier != max_tier) {
		sr_ctx_destroy(ctx);
		return -EOPNOTSUPP;
	}
	if (ctx->tier != SR_TIER_STACKRES) {
		ctx->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (ctx->efd < 0) {
			r = -errno;
			sr_ctx_destroy(ctx);
			return r;
		}
	}
	*ctxp = ctx;
	return 0;
}

static void htab_free_chain(struct sr_htab *t)
{
	while (t) {
		struct sr_htab *n = t->retired;

		sr_unmap(t, t->bytes);
		t = n;
	}
}

SR_API int sr_ctx_destroy(sr_ctx *ctx)
{
	uint32_t i;

	if (!ctx)
		return -EINVAL;
	if (ctx->nstacks || ctx->narenas || ctx->ntcaches)
		return -EBUSY;
	sr_handler_forget(ctx);
	if (ctx->fd >= 0)
		close(ctx->fd);
	if (ctx->efd >= 0)
		close(ctx->efd);
	htab_free_chain(atomic_load(&ctx->htab));
	for (i = 0; i < ctx->nchunks; i++)
		sr_unmap(ctx->chunks[i], SR_CHUNK * sizeof(sr_stack));
	sr_unmap(ctx->arena_pool, SR_MAX_ARENAS * sizeof(sr_arena));
	sr_unmap(ctx, sizeof(*ctx));
	return 0;
}

SR_API int sr_ctx_tier(const sr_ctx *ctx)
{
	return ctx ? ctx->tier : -EINVAL;
}

SR_API const char *sr_ctx_tier_reason(const sr_ctx *ctx)
{
	return ctx ? ctx->reason : "";
}

SR_API size_t sr_ctx_page_size(const sr_ctx *ctx)
{
	return ctx ? ctx->page : 0;
}

SR_API int sr_ctx_set(sr_ctx *ctx, int param, uint64_t value)
{
	if (!ctx)
		return -EINVAL;
	switch (param) {
	case SR_PARAM_COMMIT:
		if (value > SIZE_MAX - ctx->page)
			return -EINVAL;
		ctx->commit = sr_page_up(ctx, value);
		return 0;
	case SR_PARAM_CHUNK:
		if (value > SIZE_MAX - ctx->page)
			return -EINVAL;
		ctx->chunk = sr_page_up(ctx, value);
		return 0;
	case SR_PARAM_WATERMARK:
		ctx->watermark = value;
		return 0;
	case SR_PARAM_NOTIFY_GROW:
		ctx->notify_grow = value != 0;
		return 0;
	case SR_PARAM_ALIGN:
		if (value && (value < ctx->page || (value & (value - 1)) ||
			      value > SIZE_MAX / 2))
			return -EINVAL;
		ctx->align = value;
		return 0;
	default:
		return -EINVAL;
	}
}

/* ---- lookup by address ---- */

static inline uint32_t granule_hash(uintptr_t g)
{
	uint64_t x = g;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (uint32_t)x;
}

static inline sr_stack *pool_at(sr_ctx *ctx, uint32_t index)
{
	return &ctx->chunks[index >> SR_CHUNK_SHIFT][index & (SR_CHUNK - 1)];
}

static inline uintptr_t granule_first(const sr_stack *st)
{
	return st->start >> SR_GRANULE_SHIFT;
}

static inline uintptr_t granule_last(const sr_stack *st)
{
	return (st->start + st->guard - 1) >> SR_GRANULE_SHIFT;
}

static void htab_insert(struct sr_htab *t, uintptr_t g, uint32_t value)
{
	uint32_t i = granule_hash(g), v;

	for (;; i++) {
		v = atomic_load_explicit(&t->slot[i & t->mask], memory_order_relaxed);
		if (v == 0 || v == SR_TOMB)
			break;
	}
	if (v == SR_TOMB)
		t->tombs--;
	t->used++;
	atomic_store_explicit(&t->slot[i & t->mask], value, memory_order_release);
}

/* Free replaced tables when no handler can be reading them. */
static void htab_reclaim(sr_ctx *ctx)
{
	struct sr_htab *t = atomic_load(&ctx->htab);

	if (t && t->retired && atomic_load(&ctx->readers) == 0) {
		htab_free_chain(t->retired);
		t->retired = NULL;
	}
}

static int htab_rebuild(sr_ctx *ctx, uint32_t extra)
{
	struct sr_htab *old = atomic_load(&ctx->htab), *t;
	uint64_t need = extra, cap = SR_HTAB_MIN;
	size_t bytes;
	sr_stack *st;
	uintptr_t g;

	for (st = ctx->live_stacks; st; st = st->next)
		need += granule_last(st) - granule_first(st) + 1;
	while (cap < 4 * need)
		cap <<= 1;
	if (cap > (1ULL << 31))
		return -ENOMEM;
	bytes = sizeof(*t) + cap * sizeof(t->slot[0]);
	t = sr_map_anon(bytes);
	if (!t)
		return -ENOMEM;
	t->mask = cap - 1;
	t->bytes = bytes;
	for (st = ctx->live_stacks; st; st = st->next)
		for (g = granule_first(st); g <= granule_last(st); g++)
			htab_insert(t, g, st->index + 1);
	/* old keeps the chain of tables it replaced */
	t->retired = old;
	atomic_store(&ctx->htab, t);
	htab_reclaim(ctx);
	return 0;
}

int sr_table_add(sr_ctx *ctx, sr_stack *st)
{
	uint32_t n = granule_last(st) - granule_first(st) + 1;
	struct sr_htab *t = atomic_load(&ctx->htab);
	uintptr_t g;
	int r;

	if (!t || ((uint64_t)t->used + t->tombs + n) * 2 > (uint64_t)t->mask + 1) {
		r = htab_rebuild(ctx, n);
		if (r)
			return r;
		t = atomic_load(&ctx->htab);
	}
	for (g = granule_first(st); g <= granule_last(st); g++)
		htab_insert(t, g, st->index + 1);
	return 0;
}

void sr_table_del(sr_ctx *ctx, sr_stack *st)
{
	struct sr_htab *t = atomic_load(&ctx->htab);
	uint32_t i, v, want = st->index + 1;
	uintptr_t g;

	for (g = granule_first(st); g <= granule_last(st); g++) {
		for (i = granule_hash(g);; i++) {
			v = atomic_load_explicit(&t->slot[i & t->mask], memory_order_relaxed);
			if (v == 0)
				break;
			if (v == want) {
				atomic_store_explicit(&t->slot[i & t->mask], SR_TOMB,
						      memory_order_release);
				t->used--;
				t->tombs++;
				break;
			}
		}
	}
	htab_reclaim(ctx);
}

/* Async-signal-safe: no lock, no allocation, no system call. */
sr_stack *sr_table_find(sr_ctx *ctx, uintptr_t addr)
{
	uintptr_t g = addr >> SR_GRANULE_SHIFT;
	sr_stack *found = NULL, *st;
	struct sr_htab *t;
	uint32_t i, n, v, s;

	atomic_fetch_add(&ctx->readers, 1);
	t = atomic_load(&ctx->htab);
	for (i = granule_hash(g), n = 0; t && n <= t->mask; i++, n++) {
		uintptr_t start;
		size_t guard;
		uint32_t live;

		v = atomic_load_explicit(&t->slot[i & t->mask], memory_order_acquire);
		if (v == 0)
			break;
		if (v == SR_TOMB)
			continue;
		st = pool_at(ctx, v - 1);
		s = sr_seq_begin(&st->seq);
		start = st->start;
		guard = st->guard;
		live = st->live;
		if (sr_seq_retry(&st->seq, s) || !live)
			continue;
		if (addr >= start && addr - start < guard) {
			found = st;
			break;
		}
	}
	atomic_fetch_sub(&ctx->readers, 1);
	return found;
}

sr_arena *sr_arena_find(sr_ctx *ctx, uintptr_t addr)
{
	uint32_t i, n = atomic_load(&ctx->narena_slots), s;

	for (i = 0; i < n && i < SR_MAX_ARENAS; i++) {
		sr_arena *a = atomic_load_explicit(&ctx->arenas[i], memory_order_acquire);
		uintptr_t start;
		size_t len;

		if (!a)
			continue;
		s = sr_seq_begin(&a->seq);
		start = a->start;
		len = a->slot_size * a->nslots;
		if (sr_seq_retry(&a->seq, s) || !a->live)
			continue;
		if (addr >= start && addr - start < len)
			return a;
	}
	return NULL;
}

/* ---- the stack pool (under ctx->lock) ---- */

sr_stack *sr_stack_alloc(sr_ctx *ctx)
{
	sr_stack *st = ctx->free_stacks, *chunk;
	uint32_t i;

	if (st) {
		ctx->free_stacks = st->next;
		return st;
	}
	if (ctx->nchunks == SR_MAX_CHUNKS)
		return NULL;
	chunk = sr_map_anon(SR_CHUNK * sizeof(*chunk));
	if (!chunk)
		return NULL;
	ctx->chunks[ctx->nchunks] = chunk;
	/* Every object of the chunk on the free list, lowest index first. */
	for (i = SR_CHUNK; i-- > 1;) {
		chunk[i].index = (ctx->nchunks << SR_CHUNK_SHIFT) + i;
		chunk[i].next = ctx->free_stacks;
		ctx->free_stacks = &chunk[i];
	}
	chunk[0].index = ctx->nchunks << SR_CHUNK_SHIFT;
	ctx->nchunks++;
	return &chunk[0];
}

void sr_stack_free(sr_ctx *ctx, sr_stack *st)
{
	st->next = ctx->free_stacks;
	ctx->free_stacks = st;
}
