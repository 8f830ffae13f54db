// SPDX-License-Identifier: GPL-2.0
/*
 * stackres: the state shared by all stackres files of one mm (found by
 * its mm in smm_hash), and the MMU notifier that ends reservations when
 * their range is unmapped or the address space goes away.
 *
 * Locking: see "Lock order" in internal.h.
 */

#include <linux/hashtable.h>
#include <linux/maple_tree.h>
#include <linux/mm_types.h>
#include <linux/mmu_notifier.h>
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
	/*
	 * The notifier may still find @res under RCU and mark it: whoever
	 * sets DEAD first counts it, so set it here too and uncount only a
	 * mark the notifier made.
	 */
	if (test_and_set_bit(STACKRES_RES_DEAD, &res->state))
		atomic_dec(&smm->nr_dead);
	kfree_rcu(res, rcu);
}

/* Free the reservations the MMU notifier marked dead. */
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

/*
 * munmap, mremap away and MAP_FIXED over a reservation end it.  This may be
 * called in non-blocking context (OOM reaper): only mark.
 */
static int smm_invalidate_range_start(struct mmu_notifier *mn,
				      const struct mmu_notifier_range *range)
{
	struct stackres_mm *smm = container_of(mn, struct stackres_mm, mn);

	if (range->event == MMU_NOTIFY_UNMAP && range->end > range->start) {
		atomic64_inc(&smm->unmap_seq);
		smm_mark_dead(smm, range->start, range->end - 1);
	}
	return 0;
}

/* exit and exec: the address space is gone, so are its reservations. */
static void smm_release(struct mmu_notifier *mn, struct mm_struct *mm)
{
	struct stackres_mm *smm = container_of(mn, struct stackres_mm, mn);

	smm_mark_dead(smm, 0, ULONG_MAX);
}

static const struct mmu_notifier_ops smm_mn_ops = {
	.release = smm_release,
	.invalidate_range_start = smm_invalidate_range_start,
};

/* Under rcu_read_lock(); no reference taken. */
struct stackres_mm *smm_lookup_rcu(struct mm_struct *mm)
{
	struct stackres_mm *smm;

	hash_for_each_possible_rcu(smm_hash, smm, node, (unsigned long)mm)
		if (smm->mm == mm && refcount_read(&smm->refs))
			return smm;
	return NULL;
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
 * Register the MMU notifier, once, before the first reservation of this mm
 * exists: a process that only opened the device keeps munmap(), mremap()
 * and mprotect() free of our callback.  Called with no mm lock held, as
 * registering may take every lock of the mm (mm_take_all_locks()).
 */
int smm_activate(struct stackres_mm *smm)
{
	int err = 0;

	/* Pairs with the release below: registered before active is seen. */
	if (smp_load_acquire(&smm->active))
		return 0;
	if (mutex_lock_killable(&smm->activate_lock))
		return -EINTR;
	if (!smm->active) {
		err = mmu_notifier_register(&smm->mn, smm->mm);
		if (!err)	/* pairs with the acquire above */
			smp_store_release(&smm->active, true);
	}
	mutex_unlock(&smm->activate_lock);
	/*
	 * mm_take_all_locks() gives up on any pending signal, a handled one
	 * too: nothing has changed yet, so restart the call after the
	 * handler rather than fail it.
	 */
	if (err == -EINTR)
		err = -ERESTARTNOINTR;
	return err;
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
	mutex_init(&new->activate_lock);
	mt_init_flags(&new->tree, MT_FLAGS_USE_RCU);
	new->mn.ops = &smm_mn_ops;

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

/* May sleep; the caller holds no mm lock. */
void smm_put(struct stackres_mm *smm)
{
	if (!refcount_dec_and_mutex_lock(&smm->refs, &smm_hash_lock))
		return;
	hash_del_rcu(&smm->node);
	mutex_unlock(&smm_hash_lock);

	/* Waits for notifier callbacks in flight. */
	if (smm->active)
		mmu_notifier_unregister(&smm->mn, smm->mm);
	WARN_ON_ONCE(smm->nr_res);
	/* Every reservation was freed, so every DEAD mark was uncounted. */
	WARN_ON_ONCE(atomic_read(&smm->nr_dead));
	mtree_destroy(&smm->tree);
	mmdrop(smm->mm);
	kfree_rcu(smm, rcu);
}
