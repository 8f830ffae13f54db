/* SPDX-License-Identifier: MIT */
/*
 * libstackres internals.
 *
 * Memory: the library never calls malloc().  Every object comes from
 * mmap()ed pools that live as long as their context, so that the SIGSEGV
 * handler may read any object it finds through the lookup structures
 * below, even one being destroyed by another thread at that moment: it then
 * reads a stale or recycled object, never unmapped memory, and a sequence
 * count tells it to disregard what it read.
 *
 * Lookup by address, for the handler (all tiers; on stackres it maps the
 * module's answer back to the handle):
 * - stacks: an open-addressing hash table keyed by the 64 KiB granules that
 *   a stack's guard covers; an entry holds the stack's pool index + 1.
 *   Entries are only ever added or turned into tombstones by writers (under
 *   the context lock), readers walk the probe sequence to an empty slot.  A
 *   table that fills up is replaced; the old one is freed once no handler is
 *   in a lookup (ctx->readers).
 * - arenas: a small array of pointers, scanned.
 */
#ifndef SR_INTERNAL_H
#define SR_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <stackres/stackres.h>

#include "sys.h"

#define SR_API __attribute__((visibility("default")))

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL	102
#endif
#ifndef MAP_STACK
#define MAP_STACK		0x20000
#endif

#define SR_GRANULE_SHIFT	16
#define SR_CHUNK_SHIFT		10			/* stacks per pool chunk: 1024 */
#define SR_CHUNK		(1U << SR_CHUNK_SHIFT)
#define SR_MAX_CHUNKS		4096			/* 4 Mi stacks per context */
#define SR_MAX_ARENAS		1024
#define SR_RING			256			/* synthesized records */
#define SR_ALTSTACK_DEFAULT	(64 * 1024)
#define SR_HTAB_MIN		1024

#define SR_TOMB			UINT32_MAX

struct sr_stack {
	_Atomic uint32_t seq;		/* odd while the fields below change */
	uint32_t index;			/* in the context's pool */
	uint32_t id;			/* stackres: reservation id */
	uint32_t live;
	uintptr_t start;		/* the mapping: guard, then the stack */
	size_t len;
	size_t guard;
	void *user_data;
	sr_ctx *ctx;
	sr_stack *next, *prev;		/* live list, or free list (next) */
	sr_tstack *ts;			/* thread stack header, or NULL */
};

struct sr_arena {
	_Atomic uint32_t seq;
	uint32_t index;
	uint32_t id;
	uint32_t live;
	uintptr_t start;
	size_t slot_size, nslots, guard;
	void *user_data;
	sr_ctx *ctx;
	sr_arena *next_free;
};

struct sr_htab {
	uint32_t mask;
	uint32_t used;			/* entries, tombstones excluded */
	uint32_t tombs;
	size_t bytes;
	struct sr_htab *retired;	/* replaced tables not yet freed */
	_Atomic uint32_t slot[];
};

/* A record the library queues itself below the stackres tier. */
struct sr_synth {
	_Atomic uint32_t seq;
	uint32_t tid;
	uintptr_t addr;
	void *user_data;
	size_t slot;
	uint32_t in_slot;
};

struct sr_ctx {
	int tier;
	int fd;				/* /dev/stackres, or -1 */
	int efd;			/* eventfd of synthesized records, or -1 */
	size_t page;
	char reason[192];
	/* stackres: STACKRES_IOC_FEATURES */
	uint32_t trim_vec_max;
	/* sr_ctx_set() */
	uint64_t commit, chunk, watermark;
	size_t align;			/* 0: page */
	bool notify_grow;

	_Atomic uint32_t lock;		/* pools, lists, table writers */
	_Atomic uint32_t ev_lock;	/* readers of the synthesized ring */
	/* stacks */
	sr_stack *chunks[SR_MAX_CHUNKS];
	uint32_t nchunks;
	sr_stack *free_stacks;
	sr_stack *live_stacks;
	uint64_t nstacks;
	struct sr_htab *_Atomic htab;
	_Atomic uint32_t readers;	/* handlers inside a table lookup */
	/* arenas */
	sr_arena *arena_pool;		/* SR_MAX_ARENAS objects */
	sr_arena *_Atomic arenas[SR_MAX_ARENAS];
	_Atomic uint32_t narena_slots;	/* high-water mark of arenas[] */
	sr_arena *free_arenas;
	uint32_t narenas;
	uint32_t ntcaches;
	/* the SIGSEGV handler */
	sr_fault_fn fault_fn;
	void *fault_arg;
	/* synthesized records (Vyukov's bounded queue) */
	_Atomic uint32_t ring_head, ring_tail, ring_lost;
	struct sr_synth ring[SR_RING];
};

/* ctx.c */
void *sr_map_anon(size_t len);			/* NULL on failure, errno kept */
void sr_unmap(void *p, size_t len);
int sr_table_add(sr_ctx *ctx, sr_stack *st);	/* under ctx->lock */
void sr_table_del(sr_ctx *ctx, sr_stack *st);	/* under ctx->lock */
sr_stack *sr_table_find(sr_ctx *ctx, uintptr_t addr);	/* lock-free */
sr_arena *sr_arena_find(sr_ctx *ctx, uintptr_t addr);	/* lock-free */
sr_stack *sr_stack_alloc(sr_ctx *ctx);		/* under ctx->lock */
void sr_stack_free(sr_ctx *ctx, sr_stack *st);	/* under ctx->lock */
static inline size_t sr_page_up(const sr_ctx *ctx, size_t v)
{
	return (v + ctx->page - 1) & ~(ctx->page - 1);
}

/* stack.c */
int sr_stack_make(sr_ctx *ctx, size_t size, size_t guard, size_t commit,
		  void *user_data, sr_stack **stackp);
int sr_stack_unmake(sr_stack *st);
int sr_stack_resident(sr_ctx *ctx, uintptr_t from, uintptr_t to, uint64_t *bytes);

/* fault.c */
void sr_handler_forget(sr_ctx *ctx);

/* events.c */
void sr_synth_push(sr_ctx *ctx, const struct sr_fault *f);

static inline uint32_t sr_seq_begin(_Atomic uint32_t *seq)
{
	return atomic_load_explicit(seq, memory_order_acquire);
}

static inline bool sr_seq_retry(_Atomic uint32_t *seq, uint32_t s)
{
	atomic_thread_fence(memory_order_acquire);
	return (s & 1) || atomic_load_explicit(seq, memory_order_relaxed) != s;
}

static inline void sr_seq_write_begin(_Atomic uint32_t *seq)
{
	atomic_fetch_add_explicit(seq, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

static inline void sr_seq_write_end(_Atomic uint32_t *seq)
{
	atomic_fetch_add_explicit(seq, 1, memory_order_release);
}

#endif /* SR_INTERNAL_H */
