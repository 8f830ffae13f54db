/* SPDX-License-Identifier: GPL-2.0 */
/*
 * stackres internals shared by the files of the module (see the top of
 * main.c for which file does what).
 *
 * Lock order (outermost first), as the code takes them:
 *
 *   stackres_file.read_lock (mutex) one reader of a file at a time.  It is
 *                          outermost: read() copies records to user memory
 *                          while holding it, and that copy may fault, grow
 *                          a stack and take mmap_lock and stackres_mm.lock.
 *   mmap_lock              for writing by REGISTER, ARENA, TRIM of a
 *                          reservation and growth, around every protection
 *                          change, so the committed bottom of a reservation
 *                          and the VMAs agree; for reading by TRIM of arena
 *                          slots alone, ARENA's guard installation, and
 *                          QUERY (version 1 struct) and LIST, whose
 *                          resident bytes come from a page table walk.  A range is only
 *                          ever acted on under the lock it was validated
 *                          with: under mmap_lock held for writing, a
 *                          reservation that is not DEAD is still mapped as
 *                          registered; under the read lock its VMAs may
 *                          already be gone (munmap downgrades the lock
 *                          before stackres_unmap() runs), which
 *                          anon_range_check() sees as a hole.
 *   stackres_mm.lock       (mutex) one per mm: its tree of reservations
 *                          (writers), nr_res, every field of its
 *                          reservations that is not constant, the id
 *                          xarrays of the files of that mm and their
 *                          counters (nr_res, nr_arenas, committed).
 *   stackres_file.evlock   (spinlock) the event ring of a file.
 *
 *   smm_hash_lock (mutex)  only around inserting into and deleting from
 *                          smm_hash (readers use RCU); takes no other lock.
 *
 * stackres_unmap(), the access fault hook's ->unmap op, runs with mmap_lock
 * held (for reading at least; from munmap(), mremap(), exit_mmap() and the
 * OOM reaper, which must not block) and takes no lock of ours: it finds
 * the mm's state in smm_hash and walks the tree under RCU, sets a
 * reservation's DEAD bit and counts unmaps; dead reservations are freed
 * later under stackres_mm.lock (kfree_rcu, as RCU readers may see them),
 * the per-mm state after a grace period too (smm_put()).  An mm opts in
 * (smm_activate()) by setting a bit of it, which takes no lock at all.
 *
 * No user memory is touched while holding mmap_lock, stackres_mm.lock or
 * evlock: a fault there would re-enter the fault handler, which takes them.
 *
 * Kernel memory (per-mm state, files, event rings, reservations, tree and
 * id nodes) is charged to the caller's memory cgroup: the device is 0666.
 */
#ifndef _STACKRES_INTERNAL_H
#define _STACKRES_INTERNAL_H

#include <linux/access_fault.h>
#include <linux/maple_tree.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/refcount.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <linux/xarray.h>

#include <linux/stackres.h>

/* Records queued per file before they are counted as lost. */
#define STACKRES_QUEUE_LEN	256

/* Most entries of one STACKRES_IOC_TRIM_VEC call. */
#define STACKRES_TRIM_VEC_MAX	1024

/*
 * State shared by all stackres files of one mm.  Locks named below are
 * described under "Lock order" above; "lock" is this struct's own mutex.
 */
struct stackres_mm {
	/* Constant after smm_get_or_create(): mmgrab()ed, the hash key. */
	struct mm_struct *mm;
	/* In smm_hash: smm_hash_lock for writers, RCU for readers. */
	struct hlist_node node;
	/*
	 * Open files + fault handlers running; atomic.  The last put
	 * takes smm_hash_lock (smm_put()), a lookup under RCU only
	 * takes a reference that is not yet zero.
	 */
	refcount_t refs;
	struct mutex lock;		/* see "Lock order" above */
	/*
	 * [start, end - 1] -> stackres_res.  Writers hold lock;
	 * stackres_unmap() and the fault path's first look read it under
	 * RCU.
	 */
	struct maple_tree tree;
	/* Reservations in tree, dead or not: lock. */
	unsigned int nr_res;
	/*
	 * Of which marked dead; atomic: counted up by stackres_unmap()
	 * without a lock, down by res_free() under lock.
	 */
	atomic_t nr_dead;
	/*
	 * Unmaps seen by stackres_unmap() once the mm opted in
	 * (smm_activate()); atomic: bumped without a lock, read by res_map()
	 * and compared under mmap_lock by map_still_ours().
	 */
	atomic64_t unmap_seq;
	/* For call_rcu() by smm_put(). */
	struct rcu_head rcu;
};

/* One open /dev/stackres: its ids and its event ring. */
struct stackres_file {
	/* Constant after open(). */
	struct stackres_mm *smm;
	struct pid_namespace *pid_ns;	/* the opener's, for event tids */

	/* Under smm->lock. */
	struct xarray ids;		/* id -> stackres_res */
	u32 next_id;			/* for xa_alloc_cyclic() */
	unsigned int nr_res;		/* in ids, dead or not */
	unsigned int nr_arenas;		/* of them arenas */
	/*
	 * res_committed() summed over the reservations in ids that are not
	 * arenas, dead or not: LIST's total after a reap, without a walk
	 * (an arena's figure is its resident pages, counted when asked).
	 */
	u64 committed;

	struct mutex read_lock;		/* one reader at a time */
	/*
	 * Bytes of each record read() returns (STACKRES_RECORD_SIZE_VER0
	 * or _VER1), set by STACKRES_IOC_RECORD_SIZE; READ_ONCE/WRITE_ONCE.
	 */
	u32 record_size;
	spinlock_t evlock;		/* see "Lock order" above */
	/*
	 * The pointer is constant after open(); the ring is under evlock.
	 * Records are kept whole (version 1) and cut to record_size when
	 * they are read.
	 */
	struct stackres_record *ev;	/* ring of STACKRES_QUEUE_LEN */
	/* Under evlock. */
	unsigned int ev_head;
	unsigned int ev_count;
	u64 ev_lost;			/* dropped after the last queued one */
	/* Has its own lock; woken by res_event(). */
	wait_queue_head_t wq;
};

#define STACKRES_RES_DEAD	0
/*
 * Pages may be left below the committed bottom (REGISTER of memory the
 * task had used, a growth that failed half-way): TRIM must discard below
 * the cut even when the committed part does not reach down to it.  Set
 * and cleared under smm->lock.
 */
#define STACKRES_RES_BELOW	1

/*
 * A reservation, or a dense arena (slot != 0): [start, end) cut into
 * slot-sized stacks, each with guard bytes of guard markers at its bottom,
 * read/write above them and grown by plain demand paging.
 */
struct stackres_res {
	/*
	 * Constant after REGISTER (or ARENA) inserted it (res_insert(),
	 * which sets id under smm->lock): read under smm->lock or under
	 * RCU by whoever found it in smm->tree.
	 */
	unsigned long start, end;
	unsigned long guard_top;	/* start + guard (of slot 0 if dense) */
	unsigned long slot;		/* dense: bytes per slot, else 0 */
	unsigned long chunk;
	u64 watermark;
	u64 user_data;			/* the caller's cookie */
	u32 id, flags;
	struct stackres_file *owner;
	/*
	 * Under smm->lock; bottom is written with mmap_lock held for
	 * writing too, so that it agrees with the VMAs, and once the
	 * reservation is inserted only by res_set_bottom(), which keeps
	 * its file's committed sum.
	 */
	unsigned long bottom;		/* committed bottom */
	u64 peak;
	u64 grow_faults;
	u64 overflows;
	/*
	 * Atomic bit ops: DEAD is set by stackres_unmap() without a lock
	 * when (part of) the range is unmapped, or by res_free() under
	 * smm->lock; never cleared.  BELOW: see above.
	 */
	unsigned long state;
	/* For kfree_rcu() by res_free(). */
	struct rcu_head rcu;
};

/* Has the mm opted in to the access fault hook (smm_activate())? */
static inline bool smm_active(struct stackres_mm *smm)
{
	return test_bit(MMF_ACCESS_FAULT_HOOK, &smm->mm->flags);
}

static inline bool res_dead(struct stackres_res *res)
{
	return test_bit(STACKRES_RES_DEAD, &res->state);
}

static inline u64 res_committed(struct stackres_res *res)
{
	/* Dense: a slot is read/write above its guard, demand-paged. */
	if (res->slot)
		return res->slot - (res->guard_top - res->start);
	return res->end - res->bottom;
}

/*
 * Under smm->lock: move the committed bottom of a reservation that is in
 * its file's ids (not an arena), and its file's committed sum with it.
 * data_race readers of bottom (fault_may_be_ours()) see it WRITE_ONCE.
 */
static inline void res_set_bottom(struct stackres_res *res,
				  unsigned long bottom)
{
	lockdep_assert_held(&res->owner->smm->lock);
	WARN_ON_ONCE(res->slot);
	res->owner->committed += (u64)res->bottom - bottom;
	WRITE_ONCE(res->bottom, bottom);
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

/*
 * The size-extensible argument structs (clone3() and openat2() style): the
 * caller's size comes from the ioctl number.  Smaller than version 0 is
 * EINVAL; a larger struct must be zero beyond what we know (E2BIG).
 */
static inline int arg_copy_in(void *karg, size_t ksize, size_t ver0,
			      const void __user *uarg, size_t usize)
{
	if (usize < ver0)
		return -EINVAL;
	if (usize > PAGE_SIZE)
		return -E2BIG;
	return copy_struct_from_user(karg, ksize, uarg, usize);
}

/* Give the caller the part of the answer its struct has room for. */
static inline int arg_copy_out(void __user *uarg, size_t usize,
			       const void *karg, size_t ksize)
{
	return copy_to_user(uarg, karg, min(usize, ksize)) ? -EFAULT : 0;
}

/* events.c */
void res_event(struct stackres_res *res, u32 type, unsigned long addr,
	       u32 err, unsigned int fault_flags);
int stackres_record_size(struct stackres_file *f, u32 __user *usize);
ssize_t stackres_read(struct file *file, char __user *buf, size_t count,
		      loff_t *ppos);
__poll_t stackres_poll(struct file *file, poll_table *wait);

/* mm.c */
void smm_activate(struct stackres_mm *smm);
void stackres_unmap(struct mm_struct *mm, unsigned long start,
		    unsigned long end);
struct stackres_mm *smm_lookup_rcu(struct mm_struct *mm);
struct stackres_mm *smm_find_get(struct mm_struct *mm);
struct stackres_mm *smm_get_or_create(struct mm_struct *mm);
void smm_put(struct stackres_mm *smm);
void res_free(struct stackres_mm *smm, struct stackres_res *res);
void smm_reap(struct stackres_mm *smm);

/* fault.c */
enum access_fault_result stackres_fault(unsigned long addr, unsigned int flags,
					struct pt_regs *regs);

/* register.c */
struct stackres_res *file_res(struct stackres_file *f, u32 id);
int res_map(struct stackres_file *f, u64 *start, u64 len, u64 align,
	    unsigned long prot, u64 *seq);
int align_check(u64 align, u64 start, u32 flags);
bool map_still_ours(struct stackres_mm *smm, u64 seq);
int res_insert(struct stackres_file *f, struct stackres_res *res);
bool res_undo(struct stackres_file *f, u32 id, unsigned long start,
	      unsigned long end, bool unmap);
int stackres_register(struct stackres_file *f,
		      struct stackres_reg __user *ureg, size_t usize);
int stackres_unregister(struct stackres_file *f, u32 __user *uid);

/* trim.c */
int stackres_trim(struct stackres_file *f, struct stackres_trim __user *utrim,
		  size_t usize);
int stackres_trim_vec(struct stackres_file *f,
		      struct stackres_trim_vec __user *uvec, size_t usize);

/* query.c */
int stackres_query(struct stackres_file *f, struct stackres_query __user *uq,
		   size_t usize);
int stackres_list(struct stackres_file *f, struct stackres_list __user *ul,
		  size_t usize);

/* dense.c */
int stackres_arena(struct stackres_file *f,
		   struct stackres_arena __user *uarena, size_t usize);
void dense_guard_hit(struct stackres_mm *smm, unsigned long addr,
		     unsigned int fault_flags);
unsigned long dense_slot_start(struct stackres_res *res, unsigned long addr);
int dense_trim_range(struct stackres_res *res, const struct stackres_trim *t,
		     unsigned long *lo, unsigned long *hi);
void dense_query(struct stackres_res *res, struct stackres_query *q);

/* main.c */
extern unsigned int max_reservations;

#endif /* _STACKRES_INTERNAL_H */
