// SPDX-License-Identifier: GPL-2.0
/*
 * stackres: STACKRES_IOC_TRIM and STACKRES_IOC_TRIM_VEC, which free the
 * committed pages of a reservation (or of an arena slot) below a stack
 * pointer: one stack per call, or up to STACKRES_TRIM_VEC_MAX of them
 * under one mmap_lock hold.
 *
 * Each entry is first planned under stackres_mm.lock alone: which
 * reservation, what to drop.  A reservation with nothing committed below
 * the cut (and no pages left below its committed bottom, STACKRES_RES_BELOW)
 * is done then, without mmap_lock: a runtime that trims every parked stack
 * pays a mutex for the ones that did not grow.  The rest is planned again
 * and applied under mmap_lock, as the first plan may be stale by then: for
 * writing if a reservation has pages to drop (its committed bottom must
 * agree with its VMAs), else for reading (arena slots, as madvise() takes
 * it); a reservation found to need the write lock under the read lock
 * makes the rest of the batch start over with the write lock.
 *
 * Locking: see "Lock order" in internal.h.
 */

#include <linux/kernel.h>
#include <linux/maple_tree.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "internal.h"

/* What one entry drops; res is valid under smm->lock only. */
struct trim_plan {
	struct stackres_res *res;
	unsigned long lo, hi;		/* drop [lo, hi); empty: nothing */
	unsigned long slot_start;	/* arena: the slot trimmed */
	unsigned long slot_end;
};

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

/* Under smm->lock: the reservation or arena @t names, by id or address. */
static struct stackres_res *trim_target(struct stackres_file *f,
					const struct stackres_trim *t,
					int *err)
{
	struct stackres_res *res;

	*err = -EINVAL;
	if ((t->flags & ~STACKRES_TRIM_ADDR) || t->reserved)
		return NULL;
	*err = -ENOENT;
	if (!(t->flags & STACKRES_TRIM_ADDR))
		return file_res(f, t->id);
	if (t->id) {
		*err = -EINVAL;
		return NULL;
	}
	/* The range (start, end] holds sp: the byte below sp is in it. */
	if (!t->sp || t->sp != (unsigned long)t->sp)
		return NULL;
	res = mtree_load(&f->smm->tree, t->sp - 1);
	if (!res || res_dead(res) || res->owner != f)
		return NULL;
	return res;
}

/* Under smm->lock: plan the trim @t asks for. */
static int trim_plan(struct stackres_file *f, const struct stackres_trim *t,
		     struct trim_plan *p)
{
	struct stackres_res *res;
	int err;

	lockdep_assert_held(&f->smm->lock);
	res = trim_target(f, t, &err);
	if (!res)
		return err;
	p->res = res;
	if (res->slot) {
		err = dense_trim_range(res, t, &p->lo, &p->hi);
		if (err)
			return err;
		p->slot_start = dense_slot_start(res, t->sp - 1);
		p->slot_end = p->slot_start + res->slot;
		return 0;
	}
	if (t->sp < res->guard_top || t->sp > res->end)
		return -EINVAL;
	p->lo = res->guard_top;
	p->hi = trim_top(t->sp, t->keep, res->guard_top);
	/* Keep whole folios: a partly unmapped one would linger, split. */
	if (res->flags & STACKRES_LARGE_FOLIOS)
		p->hi = max(ALIGN_DOWN(p->hi, STACKRES_FOLIO_SIZE),
			    res->guard_top);
	/* Nothing committed below the cut, nothing left below it: no work. */
	if (p->hi <= res->bottom &&
	    !test_bit(STACKRES_RES_BELOW, &res->state))
		p->hi = p->lo;
	return 0;
}

/* Under mmap_lock held for writing and smm->lock. */
static int trim_reservation(struct stackres_mm *smm, const struct trim_plan *p)
{
	struct stackres_res *res = p->res;
	int err;

	/* EPERM, nothing dropped, if the task sealed any of it. */
	err = anon_range_set_access(smm->mm, p->lo, p->hi, ANON_ACCESS_DISCARD);
	if (!err) {
		/* Everything below the new committed bottom is gone. */
		if (p->hi >= res->bottom)
			clear_bit(STACKRES_RES_BELOW, &res->state);
		res_set_bottom(res, max(res->bottom, p->hi));
	} else {
		/*
		 * A prefix of [lo, hi) may be PROT_NONE now: it is not
		 * committed.  A cut below the bottom (pages left below it)
		 * leaves the committed part as it was.
		 */
		res_set_bottom(res, first_accessible(smm->mm, res->bottom,
						     max(res->bottom, p->hi)));
		set_bit(STACKRES_RES_BELOW, &res->state);
	}
	return err;
}

/*
 * Under mmap_lock, without smm->lock.  Still under the lock that found
 * the arena live, so [lo, hi) is still its slot, or being unmapped
 * (munmap downgrades to the read lock before stackres_unmap() marks us
 * DEAD), which anon_range_advise() sees as a hole: never a mapping that
 * replaced it.
 */
static int trim_slot(struct mm_struct *mm, const struct trim_plan *p,
		     bool want, u64 *committed)
{
	int err = 0;

	if (p->hi > p->lo) {
		err = anon_range_advise(mm, p->lo, p->hi, MADV_DONTNEED);
		/* Its VMAs went, the DEAD mark is on its way: gone. */
		if (err == -ENXIO)
			return -ENOENT;
	}
	if (!err && want)
		*committed = anon_range_resident(mm, p->slot_start, p->slot_end);
	return err;
}

/*
 * Apply @n trims in order.  Returns 0 with *@done = @n, or the error of
 * the first entry that failed with *@done its index: the entries before it
 * are trimmed, it and those after it untouched.  With @want, each trimmed
 * entry's committed is filled in.
 */
static int trim_entries(struct stackres_file *f, struct stackres_trim *ts,
			unsigned int n, bool want, unsigned int *done)
{
	struct stackres_mm *smm = f->smm;
	struct mm_struct *mm = smm->mm;
	bool write = false, read = false;
	struct trim_plan p;
	unsigned int i, ok;
	int err = 0, err2 = 0;

	/* The first plan, without mmap_lock: which lock is needed, if any. */
	mutex_lock(&smm->lock);
	for (i = 0; i < n; i++) {
		err = trim_plan(f, &ts[i], &p);
		if (err)
			break;
		if (p.res->slot)
			read |= p.hi > p.lo || want;
		else if (p.hi > p.lo)
			write = true;
		else
			ts[i].committed = res_committed(p.res);
	}
	mutex_unlock(&smm->lock);
	ok = i;
	*done = ok;
	if (!write && !read)
		return err;

	i = 0;
again:
	if (write ? mmap_write_lock_killable(mm) : mmap_read_lock_killable(mm)) {
		*done = i;
		return -EINTR;
	}
	for (; i < ok; i++) {
		mutex_lock(&smm->lock);
		err2 = trim_plan(f, &ts[i], &p);
		if (err2) {
			mutex_unlock(&smm->lock);
			break;
		}
		if (!p.res->slot && p.hi > p.lo && !write) {
			/* It grew since the first plan: go on under the write lock. */
			mutex_unlock(&smm->lock);
			mmap_read_unlock(mm);
			write = true;
			goto again;
		}
		if (!p.res->slot) {
			if (p.hi > p.lo)
				err2 = trim_reservation(smm, &p);
			ts[i].committed = res_committed(p.res);
			mutex_unlock(&smm->lock);
		} else {
			mutex_unlock(&smm->lock);
			err2 = trim_slot(mm, &p, want, &ts[i].committed);
		}
		if (err2)
			break;
	}
	if (write)
		mmap_write_unlock(mm);
	else
		mmap_read_unlock(mm);
	if (err2) {
		*done = i;
		return err2;
	}
	return err;
}

/* @usize: the size of the caller's struct (STACKRES_TRIM_SIZE_VER0 or more). */
int stackres_trim(struct stackres_file *f, struct stackres_trim __user *utrim,
		  size_t usize)
{
	bool want = usize >= STACKRES_TRIM_SIZE_VER1;
	struct stackres_trim t;
	unsigned int done;
	int err;

	err = arg_copy_in(&t, sizeof(t), STACKRES_TRIM_SIZE_VER0, utrim, usize);
	if (err)
		return err;
	/* Version 0 refused a non-zero pad: new flags come with version 1. */
	if (!want && t.flags)
		return -EINVAL;
	/* Fail before changing anything if the answer cannot be stored. */
	if (want && put_user(t.committed, &utrim->committed))
		return -EFAULT;
	err = trim_entries(f, &t, 1, want, &done);
	if (!err && want && put_user(t.committed, &utrim->committed))
		return -EFAULT;
	return err;
}

int stackres_trim_vec(struct stackres_file *f,
		      struct stackres_trim_vec __user *uvec, size_t usize)
{
	const size_t at_committed = offsetof(struct stackres_trim, committed);
	struct stackres_trim_vec v;
	struct stackres_trim *ts;
	char __user *base;
	unsigned int i, n, done = 0;
	bool want;
	int err;

	err = arg_copy_in(&v, sizeof(v), sizeof(v), uvec, usize);
	if (err)
		return err;
	/* Fail before changing anything if done cannot be stored. */
	if (put_user(0U, &uvec->done))
		return -EFAULT;
	/* An entry is of version 0, of version 1 or larger. */
	if (v.flags || v.count > STACKRES_TRIM_VEC_MAX ||
	    (v.entry_size != STACKRES_TRIM_SIZE_VER0 &&
	     v.entry_size < STACKRES_TRIM_SIZE_VER1))
		return -EINVAL;
	if (v.entry_size > PAGE_SIZE)
		return -E2BIG;
	want = v.entry_size >= STACKRES_TRIM_SIZE_VER1;
	base = u64_to_user_ptr(v.trims);

	ts = kvcalloc(max(v.count, 1U), sizeof(*ts), GFP_KERNEL_ACCOUNT);
	if (!ts) {
		err = -ENOMEM;
		goto out;
	}
	if (v.trims != (unsigned long)v.trims) {
		err = -EFAULT;
		goto out;
	}
	/*
	 * Read every entry first (no user memory is touched under the
	 * locks), and see that each answer can be stored before anything
	 * is trimmed.
	 */
	for (i = 0; i < v.count; i++) {
		char __user *at = base + (size_t)i * v.entry_size;

		err = copy_struct_from_user(&ts[i], sizeof(ts[i]), at,
					    v.entry_size);
		if (!err && want &&
		    copy_to_user(at + at_committed, &ts[i].committed,
				 sizeof(ts[i].committed)))
			err = -EFAULT;
		if (err)
			break;
	}
	if (err == -EFAULT)
		goto out;
	/* Entry i has a non-zero part we do not know (E2BIG): stop there. */
	n = i;
	if (n) {
		int err2 = trim_entries(f, ts, n, want, &done);

		if (err2)
			err = err2;
	}
	for (i = 0; want && i < done; i++)
		if (copy_to_user(base + (size_t)i * v.entry_size + at_committed,
				 &ts[i].committed, sizeof(ts[i].committed))) {
			err = -EFAULT;
			break;
		}
out:
	kvfree(ts);
	if (put_user(done, &uvec->done))
		return -EFAULT;
	return err;
}
