// SPDX-License-Identifier: GPL-2.0
/*
 * stackres: STACKRES_IOC_QUERY, the state of one reservation or arena, by
 * id or by an address in it, and STACKRES_IOC_LIST, every reservation of
 * a file with its committed bytes in one call.
 *
 * Resident bytes come from a page table walk (anon_range_resident()) under
 * mmap_lock held for reading; only callers whose struct has room for them
 * (ABI version 1) pay for it.
 *
 * Locking: see "Lock order" in internal.h.
 */

#include <linux/kernel.h>
#include <linux/maple_tree.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/xarray.h>

#include "internal.h"

/* Answers only: a struct reused as is keeps them, so they are ignored. */
#define QUERY_ANSWERS	(STACKRES_QUERY_SLOT | STACKRES_QUERY_GUARD | \
			 STACKRES_QUERY_FOREIGN)

/* Under smm->lock: the reservation @q asks about, NULL if none. */
static struct stackres_res *query_target(struct stackres_file *f,
					 const struct stackres_query *q)
{
	struct stackres_res *res;

	if (!(q->flags & STACKRES_QUERY_ADDR))
		return file_res(f, q->id);
	if ((unsigned long)q->addr != q->addr)
		return NULL;
	res = mtree_load(&f->smm->tree, q->addr);
	if (!res || res_dead(res))
		return NULL;
	/* Another file's reservation only when asked for. */
	if (res->owner != f && !(q->flags & STACKRES_QUERY_ANY))
		return NULL;
	return res;
}

/* @usize: the size of the caller's struct (STACKRES_QUERY_SIZE_VER0 or more). */
int stackres_query(struct stackres_file *f, struct stackres_query __user *uq,
		   size_t usize)
{
	bool v1 = usize >= STACKRES_QUERY_SIZE_VER1;
	struct stackres_mm *smm = f->smm;
	struct stackres_res *res;
	struct stackres_query q;
	int err;

	err = arg_copy_in(&q, sizeof(q), STACKRES_QUERY_SIZE_VER0, uq, usize);
	if (err)
		return err;
	/* Version 0 knew ADDR and the SLOT answer; the rest is EINVAL there. */
	if (!v1 && (q.flags & ~(STACKRES_QUERY_ADDR | STACKRES_QUERY_SLOT)))
		return -EINVAL;
	q.flags &= ~QUERY_ANSWERS;
	if (q.flags & ~(STACKRES_QUERY_ADDR | STACKRES_QUERY_ANY))
		return -EINVAL;
	if ((q.flags & STACKRES_QUERY_ANY) && !(q.flags & STACKRES_QUERY_ADDR))
		return -EINVAL;

	if (v1 && mmap_read_lock_killable(smm->mm))
		return -EINTR;
	mutex_lock(&smm->lock);
	res = query_target(f, &q);
	if (res) {
		q.id = res->id;
		q.start = res->start;
		q.len = res->end - res->start;
		q.guard = res->guard_top - res->start;
		q.committed = res_committed(res);
		q.peak = res->peak;
		q.grow_faults = res->grow_faults;
		q.overflows = res->overflows;
		q.user_data = res->user_data;
		q.slot = 0;
		if (res->owner != f)
			q.flags |= STACKRES_QUERY_FOREIGN;
		if (res->slot)
			dense_query(res, &q);
		else if ((q.flags & STACKRES_QUERY_ADDR) &&
			 q.addr < res->guard_top)
			q.flags |= STACKRES_QUERY_GUARD;
		if (v1)
			q.resident = anon_range_resident(smm->mm, q.start,
							 q.start + q.len);
	}
	mutex_unlock(&smm->lock);
	if (v1)
		mmap_read_unlock(smm->mm);

	if (!res)
		return -ENOENT;
	/* A version 0 struct gets the version 0 answer bits only. */
	if (!v1)
		q.flags &= ~STACKRES_QUERY_GUARD;
	return arg_copy_out(uq, usize, &q, sizeof(q));
}

/* Under mmap_lock and smm->lock: committed bytes as LIST reports them. */
static u64 list_committed(struct mm_struct *mm, struct stackres_res *res)
{
	if (res->slot)
		return anon_range_resident(mm, res->start, res->end);
	return res_committed(res);
}

static int list_copy_out(char __user *base, size_t esize,
			 const struct stackres_entry *ents, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		char __user *at = base + (size_t)i * esize;

		if (copy_to_user(at, &ents[i], sizeof(ents[i])))
			return -EFAULT;
		/* A later header's larger entry: what we do not know is 0. */
		if (esize > sizeof(ents[i]) &&
		    clear_user(at + sizeof(ents[i]), esize - sizeof(ents[i])))
			return -EFAULT;
	}
	return 0;
}

int stackres_list(struct stackres_file *f, struct stackres_list __user *ul,
		  size_t usize)
{
	struct stackres_entry *ents = NULL;
	struct stackres_mm *smm = f->smm;
	struct stackres_res *res;
	struct stackres_list l;
	unsigned int room = 0, filled = 0;
	unsigned long id;
	u32 next = 0;
	u64 nr = 0, total = 0;
	int err;

	err = arg_copy_in(&l, sizeof(l), sizeof(l), ul, usize);
	if (err)
		return err;
	if (l.flags || l.pad)
		return -EINVAL;
	if (l.entries) {
		if (l.entry_size < STACKRES_ENTRY_SIZE_VER1)
			return -EINVAL;
		if (l.entry_size > PAGE_SIZE)
			return -E2BIG;
		if (l.entries != (unsigned long)l.entries)
			return -EFAULT;
		/*
		 * Room for no more than this file has, whatever count says;
		 * reservations added before we look again are left to the
		 * next call (next_id).
		 */
		mutex_lock(&smm->lock);
		room = min(l.count, f->nr_res);
		mutex_unlock(&smm->lock);
	}
	if (room) {
		ents = kvcalloc(room, sizeof(*ents), GFP_KERNEL_ACCOUNT);
		if (!ents)
			return -ENOMEM;
	}

	/*
	 * The totals alone, for a runtime that reads them before every
	 * trimming decision: without arenas they are counters, once the
	 * dead are reaped, with no walk and no mmap_lock.
	 */
	if (!l.entries) {
		mutex_lock(&smm->lock);
		if (!f->nr_arenas) {
			smm_reap(smm);
			nr = f->nr_res;
			total = f->committed;
			mutex_unlock(&smm->lock);
			goto out;
		}
		mutex_unlock(&smm->lock);
	}

	if (mmap_read_lock_killable(smm->mm)) {
		kvfree(ents);
		return -EINTR;
	}
	mutex_lock(&smm->lock);
	xa_for_each(&f->ids, id, res) {
		u64 committed;

		if (res_dead(res))
			continue;
		committed = list_committed(smm->mm, res);
		nr++;
		total += committed;
		if (id < l.next_id || !l.entries)
			continue;
		if (filled < room) {
			ents[filled++] = (struct stackres_entry) {
				.user_data = res->user_data,
				.start = res->start,
				.len = res->end - res->start,
				.committed = committed,
				.id = res->id,
				.flags = res->slot ? STACKRES_ENTRY_ARENA : 0,
			};
		} else if (!next) {
			next = id;
		}
	}
	mutex_unlock(&smm->lock);
	mmap_read_unlock(smm->mm);

	err = list_copy_out(u64_to_user_ptr(l.entries), l.entry_size, ents,
			    filled);
	kvfree(ents);
	if (err)
		return err;
out:
	l.filled = filled;
	l.next_id = next;
	l.nr_res = nr;
	l.committed = total;
	return arg_copy_out(ul, usize, &l, sizeof(l));
}
