/* SPDX-License-Identifier: GPL-2.0 */
/*
 * stackres internals shared by core.c (the device, reservations, the fault
 * path) and dense.c (arenas of guarded slots).
 */
#ifndef _STACKRES_INTERNAL_H
#define _STACKRES_INTERNAL_H

#include <linux/access_fault.h>
#include <linux/maple_tree.h>
#include <linux/mmu_notifier.h>
#include <linux/mutex.h>
#include <linux/refcount.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/xarray.h>

#include <linux/stackres.h>

/* Records queued per file before they are counted as lost. */
#define STACKRES_QUEUE_LEN	256

extern unsigned int max_reservations;

/* State shared by all stackres files of one mm. */
struct stackres_mm {
	struct mm_struct *mm;		/* mmgrab()ed; the hash key */
	struct hlist_node node;		/* in smm_hash */
	refcount_t refs;		/* open files + fault handlers running */
	struct mmu_notifier mn;
	struct mutex lock;		/* see the top of core.c */
	struct maple_tree tree;		/* [start, end - 1] -> stackres_res */
	unsigned int nr_res;		/* reservations in tree, dead or not */
	atomic_t nr_dead;		/* of which marked dead (notifier) */
	atomic64_t unmap_seq;		/* unmaps seen by the notifier */
	struct rcu_head rcu;
};

struct stackres_file {
	struct stackres_mm *smm;
	struct pid_namespace *pid_ns;	/* the opener's, for event tids */
	struct xarray ids;		/* id -> stackres_res, under smm->lock */
	u32 next_id;			/* for xa_alloc_cyclic() */

	struct mutex read_lock;		/* one reader at a time */
	spinlock_t evlock;		/* ev, ev_head, ev_count, ev_lost */
	struct stackres_event *ev;	/* ring of STACKRES_QUEUE_LEN */
	unsigned int ev_head;
	unsigned int ev_count;
	u64 ev_lost;			/* dropped after the last queued one */
	wait_queue_head_t wq;
};

#define STACKRES_RES_DEAD	0

/*
 * A reservation, or a dense arena (slot != 0): [start, end) cut into
 * slot-sized stacks, each with guard bytes of guard markers at its bottom,
 * read/write above them and grown by plain demand paging.
 */
struct stackres_res {
	/* Constant after REGISTER (or ARENA). */
	unsigned long start, end;
	unsigned long guard_top;	/* start + guard (of slot 0 if dense) */
	unsigned long slot;		/* dense: bytes per slot, else 0 */
	unsigned long chunk;
	u64 watermark;
	u32 id, flags;
	struct stackres_file *owner;
	/* Under smm->lock (and mmap_lock for bottom). */
	unsigned long bottom;		/* committed bottom */
	u64 peak;
	u64 grow_faults;
	u64 overflows;
	/* Set by the MMU notifier when (part of) the range is unmapped. */
	unsigned long state;
	struct rcu_head rcu;
};

static inline bool res_dead(struct stackres_res *res)
{
	return test_bit(STACKRES_RES_DEAD, &res->state);
}

/*
 * TRIM frees the pages entirely below sp - keep and above @gtop (the top
 * of the guard): they end at the address returned.
 */
static inline unsigned long trim_top(u64 sp, u64 keep, unsigned long gtop)
{
	if (keep >= sp - gtop)
		return gtop;
	return max_t(unsigned long, (sp - keep) & PAGE_MASK, gtop);
}

/* core.c */
void res_event(struct stackres_res *res, u32 type, unsigned long addr,
	       u32 err);
void res_free(struct stackres_mm *smm, struct stackres_res *res);
void smm_reap(struct stackres_mm *smm);
struct stackres_res *file_res(struct stackres_file *f, u32 id);
int res_map(struct stackres_file *f, u64 *start, u64 len, unsigned long prot,
	    u64 *seq);
bool map_still_ours(struct stackres_mm *smm, u64 seq);
int res_insert(struct stackres_file *f, struct stackres_res *res);
bool res_undo(struct stackres_file *f, u32 id, unsigned long start,
	      unsigned long end, bool unmap);

/* dense.c */
int stackres_arena(struct stackres_file *f,
		   struct stackres_arena __user *uarena);
void dense_guard_hit(struct stackres_mm *smm, unsigned long addr);
int dense_trim_range(struct stackres_res *res, const struct stackres_trim *t,
		     unsigned long *lo, unsigned long *hi);
void dense_query(struct stackres_res *res, struct stackres_query *q);

#endif /* _STACKRES_INTERNAL_H */
