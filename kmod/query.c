// SPDX-License-Identifier: GPL-2.0
/*
 * stackres: STACKRES_IOC_QUERY, the state of one reservation or arena, by
 * id or by an address in it.
 *
 * Locking: see "Lock order" in internal.h.
 */

#include <linux/maple_tree.h>
#include <linux/mutex.h>
#include <linux/uaccess.h>

#include "internal.h"

int stackres_query(struct stackres_file *f,
		   struct stackres_query __user *uq)
{
	struct stackres_mm *smm = f->smm;
	struct stackres_res *res;
	struct stackres_query q;

	if (copy_from_user(&q, uq, sizeof(q)))
		return -EFAULT;
	/* STACKRES_QUERY_SLOT is an answer; a struct reused as is keeps it. */
	if (q.flags & ~(STACKRES_QUERY_ADDR | STACKRES_QUERY_SLOT))
		return -EINVAL;
	q.flags &= ~STACKRES_QUERY_SLOT;

	mutex_lock(&smm->lock);
	if (q.flags & STACKRES_QUERY_ADDR) {
		res = (unsigned long)q.addr == q.addr ?
			mtree_load(&smm->tree, q.addr) : NULL;
		if (res && (res->owner != f || res_dead(res)))
			res = NULL;
	} else {
		res = file_res(f, q.id);
	}
	if (res) {
		q.id = res->id;
		q.start = res->start;
		q.len = res->end - res->start;
		q.guard = res->guard_top - res->start;
		q.committed = res_committed(res);
		q.peak = res->peak;
		q.grow_faults = res->grow_faults;
		q.overflows = res->overflows;
		if (res->slot)
			dense_query(res, &q);
	}
	mutex_unlock(&smm->lock);

	if (!res)
		return -ENOENT;
	if (copy_to_user(uq, &q, sizeof(q)))
		return -EFAULT;
	return 0;
}
