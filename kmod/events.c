// SPDX-License-Identifier: GPL-2.0
/*
 * stackres: the per-file event ring.  Growth, guard hits, failed growth
 * and watermark crossings are queued here as records for the opener, who
 * read()s them or poll()s for them.  Records are kept whole (struct
 * stackres_record, ABI version 1) and read in the size the file asked for:
 * version 0 records (struct stackres_event) are their first 32 bytes.
 *
 * Locking: see "Lock order" in internal.h.
 */

#include <linux/fs.h>
#include <linux/mutex.h>
#include <linux/pid.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <linux/wait.h>

#include "internal.h"

static void ev_push(struct stackres_file *f, const struct stackres_record *ev)
{
	f->ev[(f->ev_head + f->ev_count) % STACKRES_QUEUE_LEN] = *ev;
	f->ev_count++;
}

/* Who made the access, from the fault's FAULT_FLAG_* bits. */
static u32 fault_origin(unsigned int fault_flags)
{
	if (fault_flags & FAULT_FLAG_INSTRUCTION)
		return STACKRES_ORIGIN_IFETCH;
	if (fault_flags & FAULT_FLAG_USER)
		return STACKRES_ORIGIN_USER;
	return STACKRES_ORIGIN_KERNEL;
}

/*
 * Queue a record for the owner of @res about a fault at @addr with
 * @fault_flags.  Never blocks: when the ring is full the record is counted
 * in ev_lost, and the next record that fits is preceded by a LOST record,
 * so LOST stands where records were dropped.
 */
void res_event(struct stackres_res *res, u32 type, unsigned long addr,
	       u32 err, unsigned int fault_flags)
{
	struct stackres_file *f = res->owner;
	struct stackres_record ev = {
		.type = type,
		.id = res->id,
		.tid = task_pid_nr_ns(current, f->pid_ns),
		.err = err,
		.addr = addr,
		.committed = res_committed(res),
		.user_data = res->user_data,
		.origin = fault_origin(fault_flags),
	};
	unsigned int room;

	if (res->slot && addr >= res->start && addr < res->end) {
		ev.slot = (addr - res->start) / res->slot;
		ev.flags = STACKRES_RECORD_SLOT;
	}

	spin_lock(&f->evlock);
	room = STACKRES_QUEUE_LEN - f->ev_count;
	if (f->ev_lost && room >= 2) {
		struct stackres_record lost = {
			.type = STACKRES_EV_LOST,
			.committed = f->ev_lost,
		};

		ev_push(f, &lost);
		f->ev_lost = 0;
		ev_push(f, &ev);
	} else if (!f->ev_lost && room) {
		ev_push(f, &ev);
	} else {
		f->ev_lost++;
	}
	spin_unlock(&f->evlock);
	wake_up_interruptible_poll(&f->wq, EPOLLIN | EPOLLRDNORM);
}

static bool ev_available(struct stackres_file *f)
{
	bool ret;

	spin_lock(&f->evlock);
	ret = f->ev_count || f->ev_lost;
	spin_unlock(&f->evlock);
	return ret;
}

/*
 * STACKRES_IOC_RECORD_SIZE: the size of the records read() returns from
 * now on, version 0 (struct stackres_event) or version 1 (struct
 * stackres_record).  Records already queued are returned in the new size.
 */
int stackres_record_size(struct stackres_file *f, u32 __user *usize)
{
	u32 size;

	if (get_user(size, usize))
		return -EFAULT;
	if (size != STACKRES_RECORD_SIZE_VER0 &&
	    size != STACKRES_RECORD_SIZE_VER1)
		return -EINVAL;
	WRITE_ONCE(f->record_size, size);
	return 0;
}

static int copy_records(char __user *buf, const struct stackres_record *rec,
			unsigned int n, size_t sz)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (copy_to_user(buf + i * sz, &rec[i], sz))
			return -EFAULT;
	return 0;
}

#define READ_BATCH	8

ssize_t stackres_read(struct file *file, char __user *buf,
		      size_t count, loff_t *ppos)
{
	struct stackres_file *f = file->private_data;
	const size_t sz = READ_ONCE(f->record_size);
	size_t max = count / sz, done = 0;
	ssize_t ret;

	if (current->mm != f->smm->mm)
		return -EPERM;
	if (!max)
		return -EINVAL;
	if (mutex_lock_interruptible(&f->read_lock))
		return -ERESTARTSYS;

	while (!ev_available(f)) {
		if (file->f_flags & O_NONBLOCK) {
			ret = -EAGAIN;
			goto out;
		}
		ret = wait_event_interruptible(f->wq, ev_available(f));
		if (ret)
			goto out;
	}

	/*
	 * Peek a batch under evlock, copy it out without the lock (the copy
	 * may fault and grow a stack, which queues records), then consume.
	 */
	while (done < max) {
		struct stackres_record batch[READ_BATCH];
		unsigned int n = 0, ring = 0;
		u64 lost = 0;

		spin_lock(&f->evlock);
		while (n < READ_BATCH && done + n < max && ring < f->ev_count) {
			batch[n++] = f->ev[(f->ev_head + ring) %
					   STACKRES_QUEUE_LEN];
			ring++;
		}
		if (n < READ_BATCH && done + n < max &&
		    ring == f->ev_count && f->ev_lost) {
			lost = f->ev_lost;
			f->ev_lost = 0;
			batch[n++] = (struct stackres_record) {
				.type = STACKRES_EV_LOST,
				.committed = lost,
			};
		}
		spin_unlock(&f->evlock);
		if (!n)
			break;

		if (copy_records(buf + done * sz, batch, n, sz)) {
			if (lost) {
				spin_lock(&f->evlock);
				f->ev_lost += lost;
				spin_unlock(&f->evlock);
			}
			ret = done ? done * sz : -EFAULT;
			goto out;
		}
		spin_lock(&f->evlock);
		f->ev_head = (f->ev_head + ring) % STACKRES_QUEUE_LEN;
		f->ev_count -= ring;
		spin_unlock(&f->evlock);
		done += n;
	}
	ret = done * sz;
out:
	mutex_unlock(&f->read_lock);
	return ret;
}

__poll_t stackres_poll(struct file *file, poll_table *wait)
{
	struct stackres_file *f = file->private_data;

	if (current->mm != f->smm->mm)
		return EPOLLERR;
	poll_wait(file, &f->wq, wait);
	return ev_available(f) ? EPOLLIN | EPOLLRDNORM : 0;
}
