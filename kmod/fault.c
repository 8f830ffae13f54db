// SPDX-License-Identifier: GPL-2.0
/*
 * stackres: the fault path.  The access fault hook offers stackres_fault()
 * the access faults of an mm that opted in; a fault in the uncommitted
 * part of a reservation commits the next chunk and is retried, a guard hit
 * is recorded and declined.
 *
 * Locking: see "Lock order" in internal.h.
 */

#include <linux/access_fault.h>
#include <linux/maple_tree.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>

#include "internal.h"

static bool vma_allows(struct vm_area_struct *vma, unsigned int flags)
{
	if (flags & FAULT_FLAG_WRITE)
		return vma->vm_flags & VM_WRITE;
	return vma_is_accessible(vma);
}

/*
 * Called with mmap_lock held for writing and smm->lock.  On growth of a
 * STACKRES_POPULATE reservation, [*pop_start, *pop_end) is what to
 * populate once smm->lock is dropped.
 */
static enum access_fault_result res_fault(struct stackres_mm *smm,
					  struct stackres_res *res,
					  unsigned long addr,
					  unsigned int flags,
					  unsigned long *pop_start,
					  unsigned long *pop_end)
{
	unsigned long bottom, page = addr & PAGE_MASK;
	struct vm_area_struct *vma;
	u64 before, after;
	int err;

	if (addr < res->guard_top) {
		res->overflows++;
		res_event(res, STACKRES_EV_OVERFLOW, addr, 0, flags);
		return ACCESS_FAULT_DECLINE;
	}
	if (addr >= res->bottom) {
		/* Committed, yet not accessible: the task changed it. */
		res_event(res, STACKRES_EV_FAILED, addr, EACCES, flags);
		return ACCESS_FAULT_DECLINE;
	}

	/*
	 * min(page_down(addr), bottom - chunk), never below the guard; with
	 * large folios rounded down to a folio boundary, so that the chunk
	 * can be mapped in whole folios.
	 */
	if (res->bottom - res->guard_top <= res->chunk)
		bottom = res->guard_top;
	else
		bottom = min(page, res->bottom - res->chunk);
	if (res->flags & STACKRES_LARGE_FOLIOS)
		bottom = max(ALIGN_DOWN(bottom, STACKRES_FOLIO_SIZE),
			     res->guard_top);

	/* -EPERM if the task sealed the range: no growth, a FAILED record. */
	err = anon_range_set_access(smm->mm, bottom, res->bottom,
				    ANON_ACCESS_RW);
	if (err) {
		/* Half-way, a prefix may be read/write: TRIM must see it. */
		set_bit(STACKRES_RES_BELOW, &res->state);
		res_event(res, STACKRES_EV_FAILED, addr, -err, flags);
		return ACCESS_FAULT_DECLINE;
	}

	if (res->flags & STACKRES_POPULATE) {
		*pop_start = bottom;
		*pop_end = res->bottom;
	}
	before = res_committed(res);
	res_set_bottom(res, bottom);
	after = res_committed(res);
	res->grow_faults++;
	if (after > res->peak)
		res->peak = after;
	if (res->flags & STACKRES_NOTIFY_GROW)
		res_event(res, STACKRES_EV_GROW, addr, 0, flags);
	if (res->watermark && before < res->watermark &&
	    after >= res->watermark)
		res_event(res, STACKRES_EV_WATERMARK, addr, 0, flags);

	vma = vma_lookup(smm->mm, addr);
	if (vma && vma_allows(vma, flags))
		return ACCESS_FAULT_RETRY;
	/* E.g. a part the task made read-only and now writes to. */
	res_event(res, STACKRES_EV_FAILED, addr, EACCES, flags);
	return ACCESS_FAULT_DECLINE;
}

/*
 * May the fault at @addr be ours: in a live reservation that grows or, for
 * a SIGSEGV, in an arena?  RCU only, no reference, no lock: the common
 * answer for JIT W^X flips, GC barriers and guard pages of the rest of the
 * process is no, and it must cost them next to nothing.  *@committed says
 * whether @addr looked committed already: a hint (the bottom is read
 * without smm->lock), for stackres_fault() to choose its lock.
 */
static bool fault_may_be_ours(struct mm_struct *mm, unsigned long addr,
			      unsigned int flags, bool *committed)
{
	struct stackres_mm *smm;
	struct stackres_res *res = NULL;
	bool ours;

	rcu_read_lock();
	smm = smm_lookup_rcu(mm);
	if (smm)
		res = mtree_load(&smm->tree, addr);
	if (flags & ACCESS_FAULT_SIGSEGV)
		ours = res && res->slot;
	else
		ours = res && !res_dead(res) && !res->slot;
	/* Only a hint: bottom moves under smm->lock, not held here. */
	*committed = ours && !res->slot && addr >= data_race(res->bottom);
	rcu_read_unlock();
	return ours;
}

/*
 * Was the fault resolved by another thread (a growth of the same
 * reservation) since it happened?  Under the read lock, which does not
 * hold off the page faults of the other threads, where the write lock
 * would: 0 (no), 1 (yes: retry it) or the error of taking the lock.
 */
static int fault_resolved(struct mm_struct *mm, unsigned long addr,
			  unsigned int flags)
{
	struct vm_area_struct *vma;
	int ret;

	if (mmap_read_lock_killable(mm))
		return -EINTR;
	vma = vma_lookup(mm, addr);
	ret = vma && vma_allows(vma, flags);
	mmap_read_unlock(mm);
	return ret;
}

enum access_fault_result stackres_fault(unsigned long addr,
					unsigned int flags,
					struct pt_regs *regs)
{
	enum access_fault_result ret = ACCESS_FAULT_DECLINE;
	unsigned long pop_start = 0, pop_end = 0;
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	struct stackres_mm *smm;
	struct stackres_res *res;
	bool committed, locked;
	int resolved;

	if (!mm || !fault_may_be_ours(mm, addr, flags, &committed))
		return ret;
	smm = smm_find_get(mm);
	if (!smm)
		return ret;
	if (flags & ACCESS_FAULT_SIGSEGV) {
		/* Already a SIGSEGV (a guard marker): only account for it. */
		dense_guard_hit(smm, addr, flags);
		goto out_put;
	}

	/*
	 * Each growth step takes mmap_lock for writing, which stops every
	 * other thread of the process that needs the lock, so a fault that
	 * needs no growth any more must not take it.  That is the case when
	 * another thread grew the same reservation since the fault: it then
	 * looks committed, or that thread holds mmap_lock now and this fault
	 * waits for it anyway.  Look under the read lock first then; a lone
	 * thread growing its own stack, the common case, goes straight to the
	 * write lock.
	 */
	if (committed || rwsem_is_locked(&mm->mmap_lock)) {
		resolved = fault_resolved(mm, addr, flags);
		if (resolved) {
			if (resolved > 0)
				ret = ACCESS_FAULT_RETRY;
			goto out_put;
		}
	}
	if (mmap_write_lock_killable(mm))
		goto out_put;

	/* Another thread may have grown it while we waited for the lock. */
	vma = vma_lookup(mm, addr);
	if (vma && vma_allows(vma, flags)) {
		ret = ACCESS_FAULT_RETRY;
		goto out_unlock;
	}

	mutex_lock(&smm->lock);
	res = mtree_load(&smm->tree, addr);
	if (res && !res_dead(res) && !res->slot)
		ret = res_fault(smm, res, addr, flags, &pop_start, &pop_end);
	mutex_unlock(&smm->lock);
	if (pop_end > pop_start) {
		/*
		 * Fault the new chunk in under the read lock, where faults
		 * may sleep (swap-in, a userfaultfd handler) without holding
		 * off the whole mm; it stops if it must drop the lock.
		 */
		mmap_write_downgrade(mm);
		anon_range_populate(mm, pop_start, pop_end, &locked);
		if (locked)
			mmap_read_unlock(mm);
		goto out_put;
	}
out_unlock:
	mmap_write_unlock(mm);
out_put:
	smm_put(smm);
	return ret;
}
