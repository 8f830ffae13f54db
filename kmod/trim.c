// SPDX-License-Identifier: GPL-2.0
/*
 * stackres: STACKRES_IOC_TRIM, which frees the committed pages of a
 * reservation (or of an arena slot) below a stack pointer.
 *
 * Locking: see "Lock order" in internal.h.
 */

#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/mutex.h>
#include <linux/uaccess.h>

#include "internal.h"

/*
 * The lowest address of [start, end) from which on the VMAs are accessible
 * (end if none is): where the committed part begins after a protection
 * change that failed half-way.  Called with mmap_lock.
 */
static unsigned long first_accessible(struct mm_struct *mm,
				      unsigned long start, unsigned long end)
{
	VMA_ITERATOR(vmi, mm, start);
	struct vm_area_struct *vma;

	mmap_assert_locked(mm);
	for_each_vma_range(vmi, vma, end)
		if (vma_is_accessible(vma))
			return max(vma->vm_start, start);
	return end;
}

/* TRIM of an arena slot: under the read lock, as madvise() would take it. */
static int stackres_trim_dense(struct stackres_file *f,
			       const struct stackres_trim *t)
{
	struct stackres_mm *smm = f->smm;
	struct stackres_res *res;
	unsigned long lo, hi;
	int err;

	if (mmap_read_lock_killable(smm->mm))
		return -EINTR;
	mutex_lock(&smm->lock);
	res = file_res(f, t->id);
	err = res ? dense_trim_range(res, t, &lo, &hi) : -ENOENT;
	mutex_unlock(&smm->lock);
	/*
	 * Still under the lock that found the arena live, so [lo, hi) is
	 * still its slot, or being unmapped (munmap downgrades to the read
	 * lock before its notifier marks us DEAD), which anon_range_advise()
	 * sees as a hole: never a mapping that replaced it.
	 */
	if (!err && hi > lo) {
		err = anon_range_advise(smm->mm, lo, hi, MADV_DONTNEED);
		/* Its VMAs went, the notifier's mark is on its way: gone. */
		if (err == -ENXIO)
			err = -ENOENT;
	}
	mmap_read_unlock(smm->mm);
	return err;
}

int stackres_trim(struct stackres_file *f,
		  struct stackres_trim __user *utrim)
{
	struct stackres_mm *smm = f->smm;
	struct stackres_res *res;
	struct stackres_trim t;
	unsigned long top;
	bool dense;
	int err = 0;

	if (copy_from_user(&t, utrim, sizeof(t)))
		return -EFAULT;
	if (t.pad)
		return -EINVAL;

	mutex_lock(&smm->lock);
	res = file_res(f, t.id);
	dense = res && res->slot;
	mutex_unlock(&smm->lock);
	if (dense)
		return stackres_trim_dense(f, &t);

	if (mmap_write_lock_killable(smm->mm))
		return -EINTR;
	mutex_lock(&smm->lock);
	res = file_res(f, t.id);
	if (!res) {
		err = -ENOENT;
		goto out;
	}
	if (res->slot) {
		/* Its id was reused by an arena since we looked. */
		mutex_unlock(&smm->lock);
		mmap_write_unlock(smm->mm);
		return stackres_trim_dense(f, &t);
	}
	if (t.sp < res->guard_top || t.sp > res->end) {
		err = -EINVAL;
		goto out;
	}
	top = trim_top(t.sp, t.keep, res->guard_top);
	if (top > res->guard_top) {
		/* EPERM, nothing dropped, if the task sealed any of it. */
		err = anon_range_set_access(smm->mm, res->guard_top, top,
					    ANON_ACCESS_DISCARD);
		if (!err && top > res->bottom)
			res->bottom = top;
		else if (err)
			/* A prefix may be PROT_NONE now: it is not committed. */
			res->bottom = first_accessible(smm->mm, res->bottom,
						       top);
	}
out:
	mutex_unlock(&smm->lock);
	mmap_write_unlock(smm->mm);
	return err;
}
