// SPDX-License-Identifier: GPL-2.0
/*
 * stackres: stack reservations that grow on demand in the page-fault path.
 *
 * A process opens /dev/stackres and registers ranges of its own private
 * anonymous memory.  The top of a range is committed (read/write), the rest
 * is PROT_NONE; an access to the uncommitted part above the guard, from user
 * mode or by the kernel copying to/from user memory, commits the next chunk
 * and is retried.  Guard hits, failed growth, growth and watermark crossings
 * are queued as records that the opener reads from the file.
 *
 * How the fault path reaches us: the kernel's access fault hook
 * (CONFIG_ACCESS_FAULT_HOOK) offers access faults on a VMA to
 * stackres_fault() after the fault path dropped its locks, but only on a
 * VMA that REGISTER marked (anon_range_mark_hooked(): VM_ACCESS_HOOK, on
 * every VMA of the range, whole) of an mm that opted in
 * (access_fault_enable_mm(), at its first REGISTER or ARENA): every other
 * access fault pays a bit test or two.  Faults on a marked VMA outside
 * reservations are declined after an RCU lookup, without any mm lock; only
 * growth takes mmap_lock for writing.  We answer RETRY only when the VMA
 * at the address allows the access afterwards, so the caller either
 * succeeds or signals exactly as without us.  The hook's unmap op,
 * stackres_unmap(), tells us which reservations were unmapped.
 *
 * The module, one file per job:
 *
 *   main.c      open/release, ioctl dispatch, the misc device, module init
 *   mm.c        per-mm state and the unmap op ending reservations
 *   fault.c     the fault path
 *   register.c  REGISTER, UNREGISTER and what ARENA shares with them
 *   dense.c     ARENA: dense stacks in one mapping
 *   trim.c      TRIM and TRIM_VEC
 *   query.c     QUERY and LIST
 *   events.c    the event ring: records, RECORD_SIZE, read() and poll()
 *
 * The lock order and what each lock covers are in internal.h.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/access_fault.h>
#include <linux/compat.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/pid_namespace.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/xarray.h>

#include "internal.h"

unsigned int max_reservations = 32768;
module_param(max_reservations, uint, 0644);
MODULE_PARM_DESC(max_reservations,
		 "Live reservations per process, over all its files (ENOSPC beyond)");

/* STACKRES_IOC_FEATURES: what this module supports, for a library to probe. */
static int stackres_features(void __user *uarg, size_t usize)
{
	const struct stackres_features feat = {
		.version = STACKRES_ABI_VERSION,
		.record_size = sizeof(struct stackres_record),
		.ioctls = GENMASK_ULL(_IOC_NR(STACKRES_IOC_LIST),
				      _IOC_NR(STACKRES_IOC_REGISTER)),
		.reg_flags = STACKRES_MAP | STACKRES_POPULATE |
			     STACKRES_NOTIFY_GROW | STACKRES_LARGE_FOLIOS,
		.arena_flags = STACKRES_MAP,
		.trim_flags = STACKRES_TRIM_ADDR,
		.query_flags = STACKRES_QUERY_ADDR | STACKRES_QUERY_ANY,
		.reg_size = sizeof(struct stackres_reg),
		.arena_size = sizeof(struct stackres_arena),
		.trim_size = sizeof(struct stackres_trim),
		.query_size = sizeof(struct stackres_query),
		.entry_size = sizeof(struct stackres_entry),
		.trim_vec_max = STACKRES_TRIM_VEC_MAX,
		.max_reservations = READ_ONCE(max_reservations),
		.queue_len = STACKRES_QUEUE_LEN,
		.page_size = PAGE_SIZE,
		.chunk_max = TASK_SIZE,
	};

	if (usize < STACKRES_FEATURES_SIZE_VER1)
		return -EINVAL;
	if (usize > PAGE_SIZE)
		return -E2BIG;
	/* A later header's larger struct: what we do not know is zero. */
	if (usize > sizeof(feat) &&
	    clear_user(uarg + sizeof(feat), usize - sizeof(feat)))
		return -EFAULT;
	return arg_copy_out(uarg, usize, &feat, sizeof(feat));
}

/*
 * The ioctls whose argument is a size-extensible struct are told apart by
 * number and direction; the size in @cmd is the size of the caller's
 * struct (a program built against an older header passes a smaller one).
 */
static bool ioc_is(unsigned int cmd, unsigned int known)
{
	return _IOC_TYPE(cmd) == _IOC_TYPE(known) &&
	       _IOC_NR(cmd) == _IOC_NR(known) &&
	       _IOC_DIR(cmd) == _IOC_DIR(known);
}

/*
 * The ioctls of version 0 take the size of each version's struct, or a
 * larger one (from a later header); any other size was never a request of
 * this module and stays ENOTTY, as version 0 answered it.
 */
static bool ioc_v0_is(unsigned int cmd, unsigned int known, size_t ver0)
{
	size_t usize = _IOC_SIZE(cmd);

	return ioc_is(cmd, known) &&
	       (usize == ver0 || usize >= _IOC_SIZE(known));
}

static long stackres_ioctl(struct file *file, unsigned int cmd,
			   unsigned long arg)
{
	struct stackres_file *f = file->private_data;
	void __user *argp = (void __user *)arg;
	size_t usize = _IOC_SIZE(cmd);

	if (current->mm != f->smm->mm)
		return -EPERM;

	if (cmd == STACKRES_IOC_UNREGISTER)
		return stackres_unregister(f, argp);
	if (cmd == STACKRES_IOC_RECORD_SIZE)
		return stackres_record_size(f, argp);
	if (ioc_v0_is(cmd, STACKRES_IOC_REGISTER, STACKRES_REG_SIZE_VER0))
		return stackres_register(f, argp, usize);
	if (ioc_v0_is(cmd, STACKRES_IOC_TRIM, STACKRES_TRIM_SIZE_VER0))
		return stackres_trim(f, argp, usize);
	if (ioc_v0_is(cmd, STACKRES_IOC_QUERY, STACKRES_QUERY_SIZE_VER0))
		return stackres_query(f, argp, usize);
	if (ioc_v0_is(cmd, STACKRES_IOC_ARENA, STACKRES_ARENA_SIZE_VER0))
		return stackres_arena(f, argp, usize);
	if (ioc_is(cmd, STACKRES_IOC_FEATURES))
		return stackres_features(argp, usize);
	if (ioc_is(cmd, STACKRES_IOC_TRIM_VEC))
		return stackres_trim_vec(f, argp, usize);
	if (ioc_is(cmd, STACKRES_IOC_LIST))
		return stackres_list(f, argp, usize);
	return -ENOTTY;
}

static int stackres_open(struct inode *inode, struct file *file)
{
	struct stackres_file *f;
	struct stackres_mm *smm;

	if (!current->mm)
		return -EPERM;
	f = kzalloc(sizeof(*f), GFP_KERNEL_ACCOUNT);
	if (!f)
		return -ENOMEM;
	f->ev = kcalloc(STACKRES_QUEUE_LEN, sizeof(*f->ev), GFP_KERNEL_ACCOUNT);
	if (!f->ev) {
		kfree(f);
		return -ENOMEM;
	}
	smm = smm_get_or_create(current->mm);
	if (IS_ERR(smm)) {
		kfree(f->ev);
		kfree(f);
		return PTR_ERR(smm);
	}
	f->smm = smm;
	f->pid_ns = get_pid_ns(task_active_pid_ns(current));
	xa_init_flags(&f->ids, XA_FLAGS_ALLOC1);
	mutex_init(&f->read_lock);
	f->record_size = STACKRES_RECORD_SIZE_VER0;
	spin_lock_init(&f->evlock);
	init_waitqueue_head(&f->wq);
	file->private_data = f;
	return stream_open(inode, file);
}

/* The last close ends the file's registrations; mappings stay as they are. */
static int stackres_release(struct inode *inode, struct file *file)
{
	struct stackres_file *f = file->private_data;
	struct stackres_mm *smm = f->smm;
	struct stackres_res *res;
	unsigned long id;

	mutex_lock(&smm->lock);
	xa_for_each(&f->ids, id, res)
		res_free(smm, res);
	mutex_unlock(&smm->lock);
	xa_destroy(&f->ids);
	smm_put(smm);
	put_pid_ns(f->pid_ns);
	kfree(f->ev);
	kfree(f);
	return 0;
}

static const struct file_operations stackres_fops = {
	.owner		= THIS_MODULE,
	.open		= stackres_open,
	.release	= stackres_release,
	.read		= stackres_read,
	.poll		= stackres_poll,
	.unlocked_ioctl	= stackres_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

static struct miscdevice stackres_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "stackres",
	.fops	= &stackres_fops,
	.mode	= 0666,
};

static const struct access_fault_ops stackres_ops = {
	.fault	= stackres_fault,
	.unmap	= stackres_unmap,
};

static int __init stackres_init(void)
{
	int err;

	err = access_fault_handler_register(&stackres_ops);
	if (err) {
		pr_err("access fault hook busy\n");
		return err;
	}
	err = misc_register(&stackres_misc);
	if (err)
		access_fault_handler_unregister(&stackres_ops);
	return err;
}

static void __exit stackres_exit(void)
{
	misc_deregister(&stackres_misc);
	/*
	 * Waits for every fault still running stackres_fault() and every
	 * unmap still running stackres_unmap().
	 */
	access_fault_handler_unregister(&stackres_ops);
	/* smm_free_rcu() of the last files closed. */
	rcu_barrier();
}

module_init(stackres_init);
module_exit(stackres_exit);

MODULE_DESCRIPTION("Stack reservations that grow on demand (/dev/stackres)");
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS(ACCESS_FAULT);
