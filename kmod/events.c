// SPDX-License-Identifier: GPL-2.0
/*
 * stackres: the per-file event ring.  Growth, guard hits, failed growth
 * and watermark crossings are queued here as records (struct
 * stackres_event) for the opener, who read()s them or poll()s for them.
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

static void ev_push(struct stackres_file *f, const struct stackres_event *ev)
{
	f->ev[(f->ev_head + f->ev_count) % STACKRES_QUEUE_LEN] = *ev;
	f->ev_count++;
}

/*
 * Queue a record for the owner of @res.  Never blocks: when the ring is
 * full the record is counted in ev_lost, and the next record that fits is
 * preceded by a LOST record, so LOST stands where records were dropped.
 */
void res_event(struct stackres_res *res, u32 type, unsigned long addr,
	       u32 err)
{
	struct stackres_file *f = res->owner;
	struct stackres_event ev = {
		.type = type,
		.id = res->id,
		.tid = task_pid_nr_ns(current, f->pid_ns),
		.err = err,
		.addr = addr,
		.committed = res_committed(res),
	};
	unsigned int room;

	spin_lock(&f->evlock);
	room = STACKRES_QUEUE_LEN - f->ev_count;
	if (f->ev_lost && room >= 2) {
		struct stackres_event lost = {
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

#define READ_BATCH	8

ssize_t stackres_read(struct file *file, char __user *buf,
		      size_t count, loff_t *ppos)
{
	struct stackres_file *f = file->private_data;
	const size_t sz = sizeof(struct stackres_event);
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
		struct stackres_event batch[READ_BATCH];
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
			batch[n++] = (struct stackres_event) {
				.type = STACKRES_EV_LOST,
				.committed = lost,
			};
		}
		spin_unlock(&f->evlock);
		if (!n)
			break;

		if (copy_to_user(buf + done * sz, batch, n * sz)) {
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
