// SPDX-License-Identifier: GPL-2.0
/*
 * Dense stacks: STACKRES_IOC_ARENA cuts one private anonymous mapping into
 * equal slots, each a stack with guard markers (MADV_GUARD_INSTALL, patch
 * 0008) at its bottom instead of a PROT_NONE VMA.  A million guarded
 * stacks then cost one VMA and page tables, where one reservation per stack
 * costs two VMAs and tops out near 32,000 (vm.max_map_count).
 *
 * What dense mode gives up: the whole slot above the guard is read/write
 * from the start and grows by plain demand paging, so there is no commit
 * step to count, watermark or notify (no GROW/WATERMARK/FAILED records).
 * A guard hit is the marker's SIGSEGV (SEGV_MAPERR); the access fault hook
 * calls us for it with ACCESS_FAULT_SIGSEGV (patch 0010) so the owner
 * still gets an OVERFLOW record.  An arena is one reservation for every
 * other rule (ids, limit, lifecycle, stackres_unmap() ending it on munmap).
 */

#include <linux/math64.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "internal.h"

static unsigned long res_guard(const struct stackres_res *res)
{
	return res->guard_top - res->start;
}

static int arena_check(const struct stackres_arena *a)
{
	const u64 mask = PAGE_SIZE - 1;
	u64 len;

	if (a->flags & ~STACKRES_MAP)
		return -EINVAL;
	if ((a->start | a->slot | a->guard) & mask)
		return -EINVAL;
	if (!a->slot || !a->nslots || a->guard >= a->slot)
		return -EINVAL;
	if (a->slot > TASK_SIZE || a->nslots > div64_u64(TASK_SIZE, a->slot))
		return -EINVAL;
	len = a->slot * a->nslots;
	if ((a->start || !(a->flags & STACKRES_MAP)) &&
	    a->start > TASK_SIZE - len)
		return -EINVAL;
	return align_check(a->align, a->start, a->flags);
}

/* Guard markers cannot go into mlock()ed memory (MADV_GUARD_INSTALL). */
static bool range_locked(struct mm_struct *mm, unsigned long start,
			 unsigned long end)
{
	struct vm_area_struct *vma;

	for (vma = find_vma_intersection(mm, start, end);
	     vma && vma->vm_start < end; vma = find_vma(mm, vma->vm_end))
		if (vma->vm_flags & VM_LOCKED)
			return true;
	return false;
}

/*
 * Guard every slot of [start, end) in one pass (anon_range_guard_slots(),
 * patch 0013: one range check, one VMA walk and one lock per page table
 * of guards, where an madvise() per slot cost eight times as much); *@at
 * is then the start of the first slot whose guard may be missing.
 * Installing gives up with -ERESTARTNOINTR when faults keep refilling a
 * guard; that would restart the whole ARENA (and map again): go on from
 * where it stopped a few times here first, under the same lock.
 */
static int arena_guards_install(struct mm_struct *mm, unsigned long start,
				unsigned long end, unsigned long slot,
				unsigned long guard, unsigned long *at)
{
	unsigned long from = start;
	int err, tries = 0;

	for (;;) {
		err = anon_range_guard_slots(mm, from, end, slot, guard, at);
		if (err != -ERESTARTNOINTR || fatal_signal_pending(current))
			return err;
		/* Give up after 8 tries that got no further. */
		if (*at > from)
			tries = 0;
		else if (++tries == 8)
			return err;
		from = *at;
		cond_resched();
	}
}

/*
 * Take back the guards ARENA installed in the slots of [start, end), and
 * only those: markers the task put elsewhere in its slots stay.
 */
static void arena_guards_remove(struct mm_struct *mm, unsigned long start,
				unsigned long end, unsigned long slot,
				unsigned long guard)
{
	unsigned long at;

	for (at = start; at < end; at += slot)
		anon_range_advise(mm, at, at + guard, MADV_GUARD_REMOVE);
}

/* @usize: the size of the caller's struct (STACKRES_ARENA_SIZE_VER0 or more). */
int stackres_arena(struct stackres_file *f,
		   struct stackres_arena __user *uarena, size_t usize)
{
	struct stackres_mm *smm = f->smm;
	struct mm_struct *mm = smm->mm;
	struct stackres_arena a;
	struct stackres_res *res;
	unsigned long start, end, len, at;
	bool mapped = false;
	u64 seq = 0;
	u32 id;
	int err;

	err = arg_copy_in(&a, sizeof(a), STACKRES_ARENA_SIZE_VER0, uarena,
			  usize);
	if (err)
		return err;
	/* Fail before changing anything if the result cannot be stored. */
	if (arg_copy_out(uarena, usize, &a, sizeof(a)))
		return -EFAULT;
	err = arena_check(&a);
	if (err)
		return err;
	smm_activate(smm);
	len = a.slot * a.nslots;
	if (a.flags & STACKRES_MAP) {
		err = res_map(f, &a.start, len, a.align, PROT_READ | PROT_WRITE,
			      &seq);
		if (err)
			return err;
		mapped = true;
	}
	start = a.start;
	end = start + len;

	res = kzalloc(sizeof(*res), GFP_KERNEL_ACCOUNT);
	if (!res) {
		err = -ENOMEM;
		goto out_unmap;
	}
	res->start = start;
	res->end = end;
	res->guard_top = start + a.guard;
	res->slot = a.slot;
	res->user_data = a.user_data;
	res->flags = a.flags;
	res->owner = f;
	res->bottom = start;

	if (mmap_write_lock_killable(mm)) {
		kfree(res);
		err = -EINTR;
		goto out_unmap;
	}
	mapped = mapped && map_still_ours(smm, seq);
	/* ENXIO: not private anonymous memory; EPERM: sealed. */
	err = anon_range_check(mm, start, end);
	/* Refused before anything changes (else the guards fail half-way). */
	if (!err && a.guard && range_locked(mm, start, end))
		err = -EINVAL;
	if (err) {
		kfree(res);
		goto out_unlock;
	}
	mutex_lock(&smm->lock);
	err = res_insert(f, res);
	if (err) {
		mutex_unlock(&smm->lock);
		kfree(res);
		goto out_unlock;
	}
	id = res->id;
	/*
	 * As REGISTER does, ARENA defines the protections: all read/write.
	 * Its VMAs are not marked VM_ACCESS_HOOK: an arena never grows, so
	 * stackres_fault() declines every access fault in it, and the guard
	 * hits it reports come as ACCESS_FAULT_SIGSEGV, which the fault path
	 * offers for any VMA of an opted-in mm.
	 */
	err = anon_range_set_access(mm, start, end,
				    ANON_ACCESS_RW | ANON_ACCESS_ALL);
	if (err)
		res_free(smm, res);
	mutex_unlock(&smm->lock);
	if (err)
		goto out_unlock;

	/*
	 * The guards go in under the read lock kept since the range was
	 * validated (faults of other threads go on meanwhile), so they land
	 * in this arena and nowhere else.  From here on @res may be
	 * unregistered by another thread: use @id.
	 */
	mmap_write_downgrade(mm);
	if (a.guard) {
		err = arena_guards_install(mm, start, end, a.slot, a.guard,
					   &at);
		/* The guards of the slots up to the one it stopped in. */
		if (err && !mapped)
			arena_guards_remove(mm, start, min(at + a.slot, end),
					    a.slot, a.guard);
	}
	mmap_read_unlock(mm);
	if (err) {
		mmap_write_lock(mm);
		res_undo(f, id, start, end, mapped);
		mmap_write_unlock(mm);
		return err;
	}

	a.id = id;
	if (arg_copy_out(uarena, usize, &a, sizeof(a))) {
		/* Not a success the caller cannot see: undo it. */
		mmap_write_lock(mm);
		if (res_undo(f, id, start, end, mapped) && !mapped && a.guard)
			arena_guards_remove(mm, start, end, a.slot, a.guard);
		mmap_write_unlock(mm);
		return -EFAULT;
	}
	return 0;

out_unlock:
	/* Still under the lock that saw the mapping ours. */
	if (mapped)
		anon_range_unmap(mm, start, end);
	mmap_write_unlock(mm);
	return err;
out_unmap:
	if (mapped) {
		mmap_write_lock(mm);
		if (map_still_ours(smm, seq))
			anon_range_unmap(mm, start, end);
		mmap_write_unlock(mm);
	}
	return err;
}

/* The fault at @addr was a SIGSEGV: if it hit a slot's guard, report it. */
void dense_guard_hit(struct stackres_mm *smm, unsigned long addr,
		     unsigned int fault_flags)
{
	struct stackres_res *res;
	bool arena;

	/* Guard markers the task installed itself are not ours: no lock. */
	rcu_read_lock();
	res = mtree_load(&smm->tree, addr);
	arena = res && res->slot;
	rcu_read_unlock();
	if (!arena)
		return;

	mutex_lock(&smm->lock);
	res = mtree_load(&smm->tree, addr);
	if (res && !res_dead(res) && res->slot &&
	    (addr - res->start) % res->slot < res_guard(res)) {
		res->overflows++;
		res_event(res, STACKRES_EV_OVERFLOW, addr, 0, fault_flags);
	}
	mutex_unlock(&smm->lock);
}

/* The start of the slot of arena @res that holds @addr. */
unsigned long dense_slot_start(struct stackres_res *res, unsigned long addr)
{
	return res->start + (addr - res->start) / res->slot * res->slot;
}

/*
 * TRIM of an arena: the slot is the one whose range (start, end] holds sp,
 * so sp at a slot's top trims all of it.  [*lo, *hi) is what to discard
 * (the guard keeps its markers: MADV_DONTNEED leaves them in place).
 */
int dense_trim_range(struct stackres_res *res, const struct stackres_trim *t,
		     unsigned long *lo, unsigned long *hi)
{
	unsigned long sp = t->sp, slot0;

	if (sp != t->sp || sp <= res->start || sp > res->end)
		return -EINVAL;
	slot0 = dense_slot_start(res, sp - 1);
	*lo = slot0 + res_guard(res);
	if (sp < *lo)
		return -EINVAL;
	*hi = trim_top(sp, t->keep, *lo);
	return 0;
}

/*
 * QUERY of an arena: by id the whole arena, by address the slot holding
 * it (STACKRES_QUERY_SLOT).  A slot counts as committed above its guard.
 */
void dense_query(struct stackres_res *res, struct stackres_query *q)
{
	u64 per_slot = res->slot - res_guard(res);

	if (q->flags & STACKRES_QUERY_ADDR) {
		unsigned long addr = q->addr;

		q->start = dense_slot_start(res, addr);
		q->len = res->slot;
		q->committed = per_slot;
		q->slot = (addr - res->start) / res->slot;
		q->flags |= STACKRES_QUERY_SLOT;
		if (addr - q->start < res_guard(res))
			q->flags |= STACKRES_QUERY_GUARD;
	} else {
		q->committed = per_slot * ((res->end - res->start) / res->slot);
	}
	q->peak = q->committed;
	q->grow_faults = 0;
}
