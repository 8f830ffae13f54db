// SPDX-License-Identifier: GPL-2.0
/*
 * stackres: the state shared by all stackres files of one mm (found by
 * its mm in smm_hash), and the access fault hook's unmap op that ends
 * reservations when their range is unmapped or the address space goes
 * away.
 *
 * Locking: see "Lock order" in internal.h.
 */

#include <linux/hashtable.h>
#include <linux/maple_tree.h>
#include <linux/mm_types.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/refcount.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/xarray.h>

#include "internal.h"

static DEFINE_MUTEX(smm_hash_lock);
static DEFINE_HASHTABLE(smm_hash, 6);

void res_free(struct stackres_mm *smm, struct stackres_res *res)
{
	lockdep_assert_held(&smm->lock);
	mtree_erase(&smm->tree, res->start);
	xa_erase(&res->owner->ids, res->id);
	smm->nr_res--;
	res->owner->nr_res--;
	if (res->slot)
		res->owner->nr_arenas--;
	else
		res->owner->committed -= res_committed(res);
	/*
	 * stackres_unmap() may still find @res under RCU and mark it:
	 * whoever sets DEAD first counts it, so set it here too and uncount
	 * only a mark stackres_unmap() made.
	 */
	if (test_and_set_bit(STACKRES_RES_DEAD, &res->state))
		atomic_dec(&smm->nr_dead);
	kfree_rcu(res, rcu);
}

/* Free the reservations stackres_unmap() marked dead. */
void smm_reap(struct stackres_mm *smm)
{
	struct stackres_res *res;
	unsigned long index = 0;

	lockdep_assert_held(&smm->lock);
	if (!atomic_read(&smm->nr_dead))
		return;
	mt_for_each(&smm->tree, res, index, ULONG_MAX)
		if (res_dead(res))
			res_free(smm, res);
}

static void smm_mark_dead(struct stackres_mm *smm, unsigned long start,
			  unsigned long last)
{
	struct stackres_res *res;
	unsigned long index = start;

	rcu_read_lock();
	mt_for_each(&smm->tree, res, index, last)
		if (!test_and_set_bit(STACKRES_RES_DEAD, &res->state))
			atomic_inc(&smm->nr_dead);
	rcu_read_unlock();
}

/* Under rcu_read_lock(); no reference taken. */
struct stackres_mm *smm_lookup_rcu(struct mm_struct *mm)
{
	struct stackres_mm *smm;

	hash_for_each_possible_rcu(smm_hash, smm, node, (unsigned long)mm)
		if (smm->mm == mm && refcount_read(&smm->refs))
			return smm;
	return NULL;
}

/*
 * The access fault hook's ->unmap op: munmap(), mremap() away and
 * MAP_FIXED over a reservation end it, and so do exit and exec (exit_mmap()
 * unmaps everything).  Called for every mm that opted in (smm_activate()),
 * with its mmap_lock held, possibly for reading only and from the OOM
 * reaper, which must not block: only count and mark, under RCU.  @smm
 * stays valid for that long (kfree_rcu), its tree too (MT_FLAGS_USE_RCU);
 * the SRCU section around the op keeps the module loaded.
 */
void stackres_unmap(struct mm_struct *mm, unsigned long start,
		    unsigned long end)
{
	struct stackres_mm *smm;

	if (end <= start)
		return;
	rcu_read_lock();
	smm = smm_lookup_rcu(mm);
	if (smm) {
		atomic64_inc(&smm->unmap_seq);
		smm_mark_dead(smm, start, end - 1);
	}
	rcu_read_unlock();
}

struct stackres_mm *smm_find_get(struct mm_struct *mm)
{
	struct stackres_mm *smm;

	rcu_read_lock();
	hash_for_each_possible_rcu(smm_hash, smm, node, (unsigned long)mm) {
		if (smm->mm == mm && refcount_inc_not_zero(&smm->refs)) {
			rcu_read_unlock();
			return smm;
		}
	}
	rcu_read_unlock();
	return NULL;
}

/*
 * Opt the mm in, before its first reservation exists: from now on its
 * unmaps reach stackres_unmap() (and unmap_seq counts them) and its
 * access faults on the VMAs we mark reach stackres_fault().  A process
 * that only opened the device pays nothing.  The opt-in is a bit of the
 * mm: it takes no lock, cannot fail and needs no undoing.
 */
void smm_activate(struct stackres_mm *smm)
{
	access_fault_enable_mm(smm->mm);
}

struct stackres_mm *smm_get_or_create(struct mm_struct *mm)
{
	struct stackres_mm *smm, *new;

	smm = smm_find_get(mm);
	if (smm)
		return smm;

	new = kzalloc(sizeof(*new), GFP_KERNEL_ACCOUNT);
	if (!new)
		return ERR_PTR(-ENOMEM);
	new->mm = mm;
	mmgrab(mm);
	refcount_set(&new->refs, 1);
	mutex_init(&new->lock);
	mt_init_flags(&new->tree, MT_FLAGS_USE_RCU);

	mutex_lock(&smm_hash_lock);
	smm = smm_find_get(mm);
	if (!smm) {
		hash_add_rcu(smm_hash, &new->node, (unsigned long)mm);
		smm = new;
		new = NULL;
	}
	mutex_unlock(&smm_hash_lock);

	/* Another open() of this mm won the race: use its state. */
	if (new) {
		mmdrop(mm);
		kfree(new);
	}
	return smm;
}

/*
 * After a grace period: no stackres_unmap() can still be marking a
 * reservation that res_free() already uncounted.
 */
static void smm_free_rcu(struct rcu_head *rcu)
{
	struct stackres_mm *smm = container_of(rcu, struct stackres_mm, rcu);

	/* Every reservation was freed, so every DEAD mark was uncounted. */
	WARN_ON_ONCE(atomic_read(&smm->nr_dead));
	kfree(smm);
}

/* May sleep; the caller holds no mm lock. */
void smm_put(struct stackres_mm *smm)
{
	if (!refcount_dec_and_mutex_lock(&smm->refs, &smm_hash_lock))
		return;
	hash_del_rcu(&smm->node);
	mutex_unlock(&smm_hash_lock);

	WARN_ON_ONCE(smm->nr_res);
	/*
	 * stackres_unmap() may still walk the tree under RCU: its nodes go
	 * after a grace period (MT_FLAGS_USE_RCU), @smm too.  The mm stays
	 * pinned (mmgrab()) until here, so that no other mm can be found at
	 * this address in smm_hash while we are in it.
	 */
	mtree_destroy(&smm->tree);
	mmdrop(smm->mm);
	call_rcu(&smm->rcu, smm_free_rcu);
}
