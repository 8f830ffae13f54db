// SPDX-License-Identifier: GPL-2.0
/*
 * stackres: STACKRES_IOC_REGISTER and STACKRES_IOC_UNREGISTER, and the
 * steps ARENA (dense.c) shares with REGISTER: mapping a fresh range
 * (STACKRES_MAP), inserting a reservation, undoing one, and looking one up
 * by id.
 *
 * Locking: see "Lock order" in internal.h.
 */

#include <linux/err.h>
#include <linux/maple_tree.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/xarray.h>

#include "internal.h"

struct stackres_res *file_res(struct stackres_file *f, u32 id)
{
	struct stackres_res *res;

	lockdep_assert_held(&f->smm->lock);
	res = xa_load(&f->ids, id);
	if (res && res_dead(res)) {
		res_free(f->smm, res);
		res = NULL;
	}
	return res;
}

/*
 * The alignment of a STACKRES_MAP mapping placed by the module: 0 or a
 * power of two from the page size up, only where the module places it.
 */
int align_check(u64 align, u64 start, u32 flags)
{
	if (!align)
		return 0;
	if (!(flags & STACKRES_MAP) || start)
		return -EINVAL;
	if (align < PAGE_SIZE || align > TASK_SIZE || (align & (align - 1)))
		return -EINVAL;
	return 0;
}

static int reg_check(const struct stackres_reg *reg)
{
	const u64 mask = PAGE_SIZE - 1;

	if (reg->flags & ~(STACKRES_MAP | STACKRES_POPULATE |
			   STACKRES_NOTIFY_GROW | STACKRES_LARGE_FOLIOS))
		return -EINVAL;
	if ((reg->flags & STACKRES_LARGE_FOLIOS) &&
	    reg->chunk % STACKRES_FOLIO_SIZE)
		return -EINVAL;
	if ((reg->start | reg->len | reg->guard | reg->commit | reg->chunk) &
	    mask)
		return -EINVAL;
	if (!reg->len || reg->guard > reg->len ||
	    reg->commit > reg->len - reg->guard)
		return -EINVAL;
	if (reg->len > TASK_SIZE || reg->chunk > TASK_SIZE)
		return -EINVAL;
	if ((reg->start || !(reg->flags & STACKRES_MAP)) &&
	    reg->start > TASK_SIZE - reg->len)
		return -EINVAL;
	return align_check(reg->align, reg->start, reg->flags);
}

/*
 * Cut an over-sized mapping [addr, addr + mlen) made by res_map() down to
 * the @len bytes from @start, its aligned part.  Under mmap_lock held for
 * writing, and only if no unmap in the process can have replaced it since
 * *@seq: else the excess stays mapped (PROT_NONE, MAP_NORESERVE), which
 * costs address space and nothing else.
 * *@seq then moves past our own unmaps, so that they do not count against
 * the mapping later.
 */
static int map_trim_excess(struct stackres_mm *smm, unsigned long addr,
			   unsigned long mlen, unsigned long start,
			   unsigned long len, u64 *seq)
{
	struct mm_struct *mm = smm->mm;

	if (mmap_write_lock_killable(mm))
		return -EINTR;
	if (map_still_ours(smm, *seq)) {
		if (start > addr)
			anon_range_unmap(mm, addr, start);
		if (addr + mlen > start + len)
			anon_range_unmap(mm, start + len, addr + mlen);
		*seq = atomic64_read(&smm->unmap_seq);
	}
	mmap_write_unlock(mm);
	return 0;
}

/*
 * STACKRES_MAP: a fresh MAP_NORESERVE mapping of @len bytes with @prot, at
 * *@start if it is not 0 (which must be free), else anywhere, aligned to
 * @align if that is more than a page (align_check() said it may be).
 * *@seq is the mm's unmap count from before the mapping existed:
 * map_still_ours() tells later, under mmap_lock, whether the mapping can
 * have been replaced.  The caller opted the mm in (smm_activate()), so
 * that stackres_unmap() counts them.
 */
int res_map(struct stackres_file *f, u64 *start, u64 len, u64 align,
	    unsigned long prot, u64 *seq)
{
	struct stackres_mm *smm = f->smm;
	struct mm_struct *mm = smm->mm;
	unsigned long mflags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
	unsigned long addr, mlen = len;
	int err = 0;

	/* map_still_ours() needs stackres_unmap() counting unmaps from now on. */
	if (WARN_ON_ONCE(!smm_active(smm)))
		return -EINVAL;

	/*
	 * Room to cut an aligned range out of: the kernel has no hint.  It
	 * is mapped PROT_NONE, so that the excess costs no commit charge and
	 * is never populated (mlockall()); the caller sets the protections
	 * of what it keeps.
	 */
	if (align > PAGE_SIZE) {
		if (len > TASK_SIZE - (align - PAGE_SIZE))
			return -ENOMEM;
		mlen = len + align - PAGE_SIZE;
		prot = PROT_NONE;
	}

	/* The documented error order: EEXIST, then ENOSPC, then ENOMEM. */
	if (*start) {
		if (mmap_read_lock_killable(mm))
			return -EINTR;
		if (find_vma_intersection(mm, *start, *start + len))
			err = -EEXIST;
		mmap_read_unlock(mm);
		if (err)
			return err;
		mflags |= MAP_FIXED_NOREPLACE;
	}
	mutex_lock(&smm->lock);
	smm_reap(smm);
	if (smm->nr_res >= max_reservations)
		err = -ENOSPC;
	mutex_unlock(&smm->lock);
	if (err)
		return err;

	*seq = atomic64_read(&smm->unmap_seq);
	addr = vm_mmap(NULL, *start, mlen, prot, mflags, 0);
	/*
	 * EPERM: below vm.mmap_min_addr, not a usable user address (a
	 * CAP_SYS_RAWIO caller may map there, as with mmap()).
	 */
	if (addr == -EPERM)
		return -EINVAL;
	if (IS_ERR_VALUE(addr))
		return (int)addr;
	if (*start && addr != *start) {
		vm_munmap(addr, len);
		return -EEXIST;
	}
	*start = addr;
	if (mlen > len) {
		*start = ALIGN(addr, align);
		err = map_trim_excess(smm, addr, mlen, *start, len, seq);
		if (err) {
			/* Killed: the process is going away with the mapping. */
			return err;
		}
	}
	return 0;
}

/*
 * Called with mmap_lock: true if nothing of this mm was unmapped since
 * res_map() read @seq, so the mapping it made is still the one there.
 * Errs on the safe side (any unmap in the process counts): a mapping that
 * is not provably ours is never unmapped, at worst left to the task.
 */
bool map_still_ours(struct stackres_mm *smm, u64 seq)
{
	mmap_assert_locked(smm->mm);
	return atomic64_read(&smm->unmap_seq) == seq;
}

/*
 * Give @res ([start, end), filled in) an id of @f and a place in the tree:
 * EEXIST if it overlaps a reservation of any file of this mm, ENOSPC at
 * the per-process limit.  Called with mmap_lock held for writing and
 * smm->lock, in an mm that opted in (smm_activate()).
 */
int res_insert(struct stackres_file *f, struct stackres_res *res)
{
	struct stackres_mm *smm = f->smm;
	unsigned long idx = res->start;
	int err;

	mmap_assert_write_locked(smm->mm);
	lockdep_assert_held(&smm->lock);
	/* DEAD marks, and so "still mapped as registered", need the opt-in. */
	if (WARN_ON_ONCE(!smm_active(smm)))
		return -EINVAL;
	smm_reap(smm);
	if (mt_find(&smm->tree, &idx, res->end - 1))
		return -EEXIST;
	if (smm->nr_res >= max_reservations)
		return -ENOSPC;
	err = xa_alloc_cyclic(&f->ids, &res->id, res, XA_LIMIT(1, U32_MAX),
			      &f->next_id, GFP_KERNEL_ACCOUNT);
	if (err < 0)
		return err;
	err = mtree_insert_range(&smm->tree, res->start, res->end - 1, res,
				 GFP_KERNEL_ACCOUNT);
	if (err) {
		xa_erase(&f->ids, res->id);
		return err;
	}
	smm->nr_res++;
	f->nr_res++;
	if (res->slot)
		f->nr_arenas++;
	else
		f->committed += res_committed(res);
	return 0;
}

/*
 * Undo a registration whose result could not be given to the caller, or
 * that failed after it was inserted: only if @id still names the
 * reservation at @start and it is not DEAD, so that under mmap_lock
 * (held for writing) its range is still mapped as registered; then
 * @unmap, if set, removes the STACKRES_MAP mapping too.  Returns true if
 * the range was still ours.
 */
bool res_undo(struct stackres_file *f, u32 id, unsigned long start,
	      unsigned long end, bool unmap)
{
	struct stackres_mm *smm = f->smm;
	struct stackres_res *res;
	bool ours;

	mmap_assert_write_locked(smm->mm);
	mutex_lock(&smm->lock);
	res = file_res(f, id);
	ours = res && res->start == start;
	if (ours)
		res_free(smm, res);
	mutex_unlock(&smm->lock);
	if (ours && unmap)
		anon_range_unmap(smm->mm, start, end);
	return ours;
}

/*
 * Is [start, end) part of one VMA that allows no access?  Then making it
 * PROT_NONE changes nothing, as for a STACKRES_MAP mapping below its
 * committed top: it was mapped PROT_NONE (the proof still looks, as
 * another thread may have changed it).  Under mmap_lock held for
 * writing, after anon_range_check() accepted the range under that same
 * lock, this is all anon_range_set_access(ANON_ACCESS_ALL) would find to
 * do; its pass (a range check, a VMA walk, a TLB gather) cost 7 % of a
 * REGISTER with STACKRES_MAP.
 */
static bool range_is_none(struct mm_struct *mm, unsigned long start,
			  unsigned long end)
{
	struct vm_area_struct *vma = vma_lookup(mm, start);

	mmap_assert_write_locked(mm);
	return vma && vma->vm_end >= end &&
	       !(vma->vm_flags & VM_ACCESS_FLAGS);
}

/* @usize: the size of the caller's struct (STACKRES_REG_SIZE_VER0 or more). */
int stackres_register(struct stackres_file *f,
		      struct stackres_reg __user *ureg, size_t usize)
{
	struct stackres_mm *smm = f->smm;
	struct mm_struct *mm = smm->mm;
	struct stackres_res *res;
	struct stackres_reg reg;
	unsigned long start, end, top;
	bool mapped = false;
	u64 seq = 0;
	u32 id;
	int err;

	err = arg_copy_in(&reg, sizeof(reg), STACKRES_REG_SIZE_VER0, ureg,
			  usize);
	if (err)
		return err;
	/* Fail before changing anything if the result cannot be stored. */
	if (arg_copy_out(ureg, usize, &reg, sizeof(reg)))
		return -EFAULT;
	/* Version 0 refused the flags that came with version 1. */
	if (usize < STACKRES_REG_SIZE_VER1 &&
	    (reg.flags & ~(STACKRES_MAP | STACKRES_POPULATE |
			   STACKRES_NOTIFY_GROW)))
		return -EINVAL;
	err = reg_check(&reg);
	if (err)
		return err;
	smm_activate(smm);
	if (reg.flags & STACKRES_MAP) {
		err = res_map(f, &reg.start, reg.len, reg.align, PROT_NONE,
			      &seq);
		if (err)
			return err;
		mapped = true;
	}
	start = reg.start;
	end = start + reg.len;
	top = end - reg.commit;

	res = kzalloc(sizeof(*res), GFP_KERNEL_ACCOUNT);
	if (!res) {
		err = -ENOMEM;
		goto out_unmap;
	}
	res->start = start;
	res->end = end;
	res->guard_top = start + reg.guard;
	res->chunk = reg.chunk ? reg.chunk : STACKRES_DEFAULT_CHUNK;
	res->watermark = reg.watermark;
	res->user_data = reg.user_data;
	res->flags = reg.flags;
	res->owner = f;
	res->bottom = top;
	res->peak = reg.commit;
	/* The task's own memory may hold pages where it is now PROT_NONE. */
	if (!(reg.flags & STACKRES_MAP))
		__set_bit(STACKRES_RES_BELOW, &res->state);

	if (mmap_write_lock_killable(mm)) {
		kfree(res);
		err = -EINTR;
		goto out_unmap;
	}
	/* Ours to unmap on error only if nobody can have replaced it. */
	mapped = mapped && map_still_ours(smm, seq);
	/* ENXIO: not private anonymous memory; EPERM: sealed. */
	err = anon_range_check(mm, start, end);
	if (err) {
		kfree(res);
		goto out_unlock_mm;
	}
	mutex_lock(&smm->lock);
	err = res_insert(f, res);
	if (err) {
		mutex_unlock(&smm->lock);
		kfree(res);
		goto out_unlock_mm;
	}
	id = res->id;

	/*
	 * Growth faults reach stackres_fault() only on VMAs marked
	 * VM_ACCESS_HOOK: mark every VMA of the range, before any fault can
	 * find the reservation.  The marks outlive a failure below and, for
	 * caller memory, cover the whole VMA around the range: a marked VMA
	 * outside every reservation only costs its access faults a look in
	 * the tree and a decline.  anon_range_check() already refused
	 * sealed memory under this lock, so this cannot fail on a seal.
	 */
	err = anon_range_mark_hooked(mm, start, end);
	/*
	 * The top read/write first: only that step is charged.  REGISTER
	 * defines the protections (ANON_ACCESS_ALL): a page the caller had
	 * made read-only becomes read/write or PROT_NONE like the rest.
	 */
	if (!err && reg.commit)
		err = anon_range_set_access(mm, top, end, ANON_ACCESS_RW |
					    ANON_ACCESS_ALL);
	if (!err && top > start &&
	    !((reg.flags & STACKRES_MAP) && range_is_none(mm, start, top)))
		err = anon_range_set_access(mm, start, top, ANON_ACCESS_ALL);
	/* Without transparent huge pages the flag only aligns the steps. */
	if (!err && (reg.flags & STACKRES_LARGE_FOLIOS) &&
	    IS_ENABLED(CONFIG_TRANSPARENT_HUGEPAGE))
		err = anon_range_advise(mm, start, end, MADV_HUGEPAGE);
	if (err)
		res_free(smm, res);
	mutex_unlock(&smm->lock);
	if (!err && reg.commit && (reg.flags & STACKRES_POPULATE)) {
		bool locked;

		mmap_write_downgrade(mm);
		anon_range_populate(mm, top, end, &locked);
		if (locked)
			mmap_read_unlock(mm);
	} else {
		/* Still under the lock that saw the mapping ours. */
		if (err && mapped)
			anon_range_unmap(mm, start, end);
		mmap_write_unlock(mm);
	}
	if (err)
		return err;

	reg.id = id;
	if (arg_copy_out(ureg, usize, &reg, sizeof(reg))) {
		/* Not a success the caller cannot see: undo it. */
		mmap_write_lock(mm);
		res_undo(f, id, start, end, mapped);
		mmap_write_unlock(mm);
		return -EFAULT;
	}
	return 0;

out_unlock_mm:
	if (mapped)
		anon_range_unmap(mm, start, end);
	mmap_write_unlock(mm);
	return err;
out_unmap:
	/* Without the lock we cannot know it is still ours: only if sure. */
	if (mapped) {
		mmap_write_lock(mm);
		if (map_still_ours(smm, seq))
			anon_range_unmap(mm, start, end);
		mmap_write_unlock(mm);
	}
	return err;
}

int stackres_unregister(struct stackres_file *f, u32 __user *uid)
{
	struct stackres_res *res;
	u32 id;

	if (get_user(id, uid))
		return -EFAULT;
	mutex_lock(&f->smm->lock);
	res = file_res(f, id);
	if (res)
		res_free(f->smm, res);
	mutex_unlock(&f->smm->lock);
	return res ? 0 : -ENOENT;
}
