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
 * stackres_fault() after the fault path dropped its locks, but only for an
 * mm that opted in (access_fault_enable_mm(), at its first REGISTER or
 * ARENA): every other process pays one bit test per fault.  Faults outside
 * reservations are declined after an RCU lookup, without any mm lock; only
 * growth takes mmap_lock for writing.  We answer RETRY only when the VMA at
 * the address allows the access afterwards, so the caller either succeeds
 * or signals exactly as without us.
 *
 * Lock order (outermost first), as the code takes them:
 *
 *   stackres_file.read_lock (mutex) one reader of a file at a time.  It is
 *                          outermost: read() copies records to user memory
 *                          while holding it, and that copy may fault, grow
 *                          a stack and take mmap_lock and stackres_mm.lock.
 *   mmap_lock              for writing by REGISTER, ARENA, TRIM of a
 *                          reservation and growth, around every protection
 *                          change, so the committed bottom of a reservation
 *                          and the VMAs agree; for reading by dense TRIM
 *                          and ARENA's guard installation.  A range is only
 *                          ever acted on under the lock it was validated
 *                          with: under mmap_lock held for writing, a
 *                          reservation that is not DEAD is still mapped as
 *                          registered; under the read lock its VMAs may
 *                          already be gone (munmap downgrades the lock
 *                          before the notifier runs), which
 *                          anon_range_check() sees as a hole.
 *   stackres_mm.lock       (mutex) one per mm: its tree of reservations
 *                          (writers), nr_res, every field of its
 *                          reservations that is not constant, and the id
 *                          xarrays of the files of that mm.
 *   stackres_file.evlock   (spinlock) the event ring of a file.
 *
 *   smm_hash_lock (mutex)  only around inserting into and deleting from
 *                          smm_hash (readers use RCU); never held across
 *                          mmu_notifier_register(), which may take every
 *                          lock of the mm.
 *
 * The MMU notifier may run in non-blocking context: it only walks the tree
 * under RCU, sets a reservation's DEAD bit and counts unmaps; dead
 * reservations are freed later under stackres_mm.lock (kfree_rcu, as RCU
 * readers may see them).
 *
 * No user memory is touched while holding mmap_lock, stackres_mm.lock or
 * evlock: a fault there would re-enter the fault handler, which takes them.
 *
 * Kernel memory (per-mm state, files, event rings, reservations, tree and
 * id nodes) is charged to the caller's memory cgroup: the device is 0666.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/access_fault.h>
#include <linux/fs.h>
#include <linux/hashtable.h>
#include <linux/maple_tree.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/mmu_notifier.h>
#include <linux/module.h>
#include <linux/pid_namespace.h>
#include <linux/poll.h>
#include <linux/rcupdate.h>
#include <linux/refcount.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/security.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <linux/xarray.h>

#include "internal.h"

unsigned int max_reservations = 32768;
module_param(max_reservations, uint, 0644);
MODULE_PARM_DESC(max_reservations,
		 "Live reservations per process, over all its files (ENOSPC beyond)");

static DEFINE_MUTEX(smm_hash_lock);
static DEFINE_HASHTABLE(smm_hash, 6);

static u64 res_committed(struct stackres_res *res)
{
	/* Dense: a slot is read/write above its guard, demand-paged. */
	if (res->slot)
		return res->slot - (res->guard_top - res->start);
	return res->end - res->bottom;
}

/* ---- events ---- */

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

/* ---- per-mm state ---- */

void res_free(struct stackres_mm *smm, struct stackres_res *res)
{
	lockdep_assert_held(&smm->lock);
	mtree_erase(&smm->tree, res->start);
	xa_erase(&res->owner->ids, res->id);
	smm->nr_res--;
	/*
	 * The notifier may still find @res under RCU and mark it: whoever
	 * sets DEAD first counts it, so set it here too and uncount only a
	 * mark the notifier made.
	 */
	if (test_and_set_bit(STACKRES_RES_DEAD, &res->state))
		atomic_dec(&smm->nr_dead);
	kfree_rcu(res, rcu);
}

/* Free the reservations the MMU notifier marked dead. */
void smm_reap(struct stackres_mm *smm)
{
	struct stackres_res *res;
	unsigned long index = 0;

	lockdep_assert_held(&smm->lock);
	if (!atomic_read(&smm->nr_dead))
		return;
	mt_for_each(&smm->tree, res, index, ULONG_MAX)
		if (res_dead(res))
			res_free(smm, res);
}

static void smm_mark_dead(struct stackres_mm *smm, unsigned long start,
			  unsigned long last)
{
	struct stackres_res *res;
	unsigned long index = start;

	rcu_read_lock();
	mt_for_each(&smm->tree, res, index, last)
		if (!test_and_set_bit(STACKRES_RES_DEAD, &res->state))
			atomic_inc(&smm->nr_dead);
	rcu_read_unlock();
}

/*
 * munmap, mremap away and MAP_FIXED over a reservation end it.  This may be
 * called in non-blocking context (OOM reaper): only mark.
 */
static int smm_invalidate_range_start(struct mmu_notifier *mn,
				      const struct mmu_notifier_range *range)
{
	struct stackres_mm *smm = container_of(mn, struct stackres_mm, mn);

	if (range->event == MMU_NOTIFY_UNMAP && range->end > range->start) {
		atomic64_inc(&smm->unmap_seq);
		smm_mark_dead(smm, range->start, range->end - 1);
	}
	return 0;
}

/* exit and exec: the address space is gone, so are its reservations. */
static void smm_release(struct mmu_notifier *mn, struct mm_struct *mm)
{
	struct stackres_mm *smm = container_of(mn, struct stackres_mm, mn);

	smm_mark_dead(smm, 0, ULONG_MAX);
}

static const struct mmu_notifier_ops smm_mn_ops = {
	.release = smm_release,
	.invalidate_range_start = smm_invalidate_range_start,
};

/* Under rcu_read_lock(); no reference taken. */
static struct stackres_mm *smm_lookup_rcu(struct mm_struct *mm)
{
	struct stackres_mm *smm;

	hash_for_each_possible_rcu(smm_hash, smm, node, (unsigned long)mm)
		if (smm->mm == mm && refcount_read(&smm->refs))
			return smm;
	return NULL;
}

static struct stackres_mm *smm_find_get(struct mm_struct *mm)
{
	struct stackres_mm *smm;

	rcu_read_lock();
	hash_for_each_possible_rcu(smm_hash, smm, node, (unsigned long)mm) {
		if (smm->mm == mm && refcount_inc_not_zero(&smm->refs)) {
			rcu_read_unlock();
			return smm;
		}
	}
	rcu_read_unlock();
	return NULL;
}

static struct stackres_mm *smm_get_or_create(struct mm_struct *mm)
{
	struct stackres_mm *smm, *new;
	int err;

	smm = smm_find_get(mm);
	if (smm)
		return smm;

	new = kzalloc(sizeof(*new), GFP_KERNEL_ACCOUNT);
	if (!new)
		return ERR_PTR(-ENOMEM);
	new->mm = mm;
	mmgrab(mm);
	refcount_set(&new->refs, 1);
	mutex_init(&new->lock);
	mt_init_flags(&new->tree, MT_FLAGS_USE_RCU);
	new->mn.ops = &smm_mn_ops;
	/*
	 * Without smm_hash_lock: registering may take every lock of the mm
	 * (mm_take_all_locks()), which must not stall other processes' open().
	 */
	err = mmu_notifier_register(&new->mn, mm);
	if (err) {
		mmdrop(mm);
		kfree(new);
		return ERR_PTR(err);
	}

	mutex_lock(&smm_hash_lock);
	smm = smm_find_get(mm);
	if (!smm) {
		hash_add_rcu(smm_hash, &new->node, (unsigned long)mm);
		smm = new;
		new = NULL;
	}
	mutex_unlock(&smm_hash_lock);

	/* Another open() of this mm won the race: use its state. */
	if (new) {
		mmu_notifier_unregister(&new->mn, mm);
		mmdrop(mm);
		kfree(new);
	}
	return smm;
}

/* May sleep; the caller holds no mm lock. */
static void smm_put(struct stackres_mm *smm)
{
	if (!refcount_dec_and_mutex_lock(&smm->refs, &smm_hash_lock))
		return;
	hash_del_rcu(&smm->node);
	mutex_unlock(&smm_hash_lock);

	/* Waits for notifier callbacks in flight. */
	mmu_notifier_unregister(&smm->mn, smm->mm);
	WARN_ON_ONCE(smm->nr_res);
	/* Every reservation was freed, so every DEAD mark was uncounted. */
	WARN_ON_ONCE(atomic_read(&smm->nr_dead));
	mtree_destroy(&smm->tree);
	mmdrop(smm->mm);
	kfree_rcu(smm, rcu);
}

/* ---- the fault path ---- */

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
		res_event(res, STACKRES_EV_OVERFLOW, addr, 0);
		return ACCESS_FAULT_DECLINE;
	}
	if (addr >= res->bottom) {
		/* Committed, yet not accessible: the task changed it. */
		res_event(res, STACKRES_EV_FAILED, addr, EACCES);
		return ACCESS_FAULT_DECLINE;
	}

	/* min(page_down(addr), bottom - chunk), never below the guard */
	if (res->bottom - res->guard_top <= res->chunk)
		bottom = res->guard_top;
	else
		bottom = min(page, res->bottom - res->chunk);

	/* -EPERM if the task sealed the range: no growth, a FAILED record. */
	err = anon_range_set_access(smm->mm, bottom, res->bottom,
				    ANON_ACCESS_RW);
	if (err) {
		res_event(res, STACKRES_EV_FAILED, addr, -err);
		return ACCESS_FAULT_DECLINE;
	}

	if (res->flags & STACKRES_POPULATE) {
		*pop_start = bottom;
		*pop_end = res->bottom;
	}
	before = res_committed(res);
	res->bottom = bottom;
	after = res_committed(res);
	res->grow_faults++;
	if (after > res->peak)
		res->peak = after;
	if (res->flags & STACKRES_NOTIFY_GROW)
		res_event(res, STACKRES_EV_GROW, addr, 0);
	if (res->watermark && before < res->watermark &&
	    after >= res->watermark)
		res_event(res, STACKRES_EV_WATERMARK, addr, 0);

	vma = vma_lookup(smm->mm, addr);
	if (vma && vma_allows(vma, flags))
		return ACCESS_FAULT_RETRY;
	/* E.g. a part the task made read-only and now writes to. */
	res_event(res, STACKRES_EV_FAILED, addr, EACCES);
	return ACCESS_FAULT_DECLINE;
}

/*
 * May the fault at @addr be ours: in a live reservation that grows or, for
 * a SIGSEGV, in an arena?  RCU only, no reference, no lock: the common
 * answer for JIT W^X flips, GC barriers and guard pages of the rest of the
 * process is no, and it must cost them next to nothing.
 */
static bool fault_may_be_ours(struct mm_struct *mm, unsigned long addr,
			      unsigned int flags)
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
	rcu_read_unlock();
	return ours;
}

static enum access_fault_result stackres_fault(unsigned long addr,
					       unsigned int flags,
					       struct pt_regs *regs)
{
	enum access_fault_result ret = ACCESS_FAULT_DECLINE;
	unsigned long pop_start = 0, pop_end = 0;
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	struct stackres_mm *smm;
	struct stackres_res *res;
	bool locked;

	if (!mm || !fault_may_be_ours(mm, addr, flags))
		return ret;
	smm = smm_find_get(mm);
	if (!smm)
		return ret;
	if (flags & ACCESS_FAULT_SIGSEGV) {
		/* Already a SIGSEGV (a guard marker): only account for it. */
		dense_guard_hit(smm, addr);
		goto out_put;
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

/* ---- ioctls ---- */

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

static int reg_check(const struct stackres_reg *reg)
{
	const u64 mask = PAGE_SIZE - 1;

	if (reg->flags & ~(STACKRES_MAP | STACKRES_POPULATE |
			   STACKRES_NOTIFY_GROW))
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
	return 0;
}

/*
 * STACKRES_MAP: a fresh MAP_NORESERVE mapping of @len bytes with @prot, at
 * *@start if it is not 0 (which must be free), else anywhere.  *@seq is the
 * mm's unmap count from before the mapping existed: map_still_ours() tells
 * later, under mmap_lock, whether the mapping can have been replaced.
 */
int res_map(struct stackres_file *f, u64 *start, u64 len, unsigned long prot,
	    u64 *seq)
{
	struct stackres_mm *smm = f->smm;
	struct mm_struct *mm = smm->mm;
	unsigned long mflags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
	unsigned long addr;
	int err = 0;

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
	addr = vm_mmap(NULL, *start, len, prot, mflags, 0);
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
 * smm->lock; opts the mm in to the access fault hook.
 */
int res_insert(struct stackres_file *f, struct stackres_res *res)
{
	struct stackres_mm *smm = f->smm;
	unsigned long idx = res->start;
	int err;

	mmap_assert_write_locked(smm->mm);
	lockdep_assert_held(&smm->lock);
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
	/* From now on this mm's access faults come to stackres_fault(). */
	access_fault_enable_mm(smm->mm);
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

static int stackres_register(struct stackres_file *f,
			     struct stackres_reg __user *ureg)
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

	if (copy_from_user(&reg, ureg, sizeof(reg)))
		return -EFAULT;
	/* Fail before changing anything if the result cannot be stored. */
	if (copy_to_user(ureg, &reg, sizeof(reg)))
		return -EFAULT;
	err = reg_check(&reg);
	if (err)
		return err;
	if (reg.flags & STACKRES_MAP) {
		err = res_map(f, &reg.start, reg.len, PROT_NONE, &seq);
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
	res->flags = reg.flags;
	res->owner = f;
	res->bottom = top;
	res->peak = reg.commit;

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
	 * The top read/write first: only that step is charged.  REGISTER
	 * defines the protections (ANON_ACCESS_ALL): a page the caller had
	 * made read-only becomes read/write or PROT_NONE like the rest.
	 */
	if (reg.commit)
		err = anon_range_set_access(mm, top, end, ANON_ACCESS_RW |
					    ANON_ACCESS_ALL);
	if (!err && top > start)
		err = anon_range_set_access(mm, start, top, ANON_ACCESS_ALL);
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
	if (copy_to_user(ureg, &reg, sizeof(reg))) {
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

static int stackres_unregister(struct stackres_file *f, u32 __user *uid)
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

static int stackres_trim(struct stackres_file *f,
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

static int stackres_query(struct stackres_file *f,
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

static long stackres_ioctl(struct file *file, unsigned int cmd,
			   unsigned long arg)
{
	struct stackres_file *f = file->private_data;
	void __user *argp = (void __user *)arg;

	if (current->mm != f->smm->mm)
		return -EPERM;

	switch (cmd) {
	case STACKRES_IOC_REGISTER:
		return stackres_register(f, argp);
	case STACKRES_IOC_UNREGISTER:
		return stackres_unregister(f, argp);
	case STACKRES_IOC_TRIM:
		return stackres_trim(f, argp);
	case STACKRES_IOC_QUERY:
		return stackres_query(f, argp);
	case STACKRES_IOC_ARENA:
		return stackres_arena(f, argp);
	default:
		return -ENOTTY;
	}
}

/* ---- file operations ---- */

#define READ_BATCH	8

static ssize_t stackres_read(struct file *file, char __user *buf,
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

static __poll_t stackres_poll(struct file *file, poll_table *wait)
{
	struct stackres_file *f = file->private_data;

	if (current->mm != f->smm->mm)
		return EPOLLERR;
	poll_wait(file, &f->wq, wait);
	return ev_available(f) ? EPOLLIN | EPOLLRDNORM : 0;
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

static int __init stackres_init(void)
{
	int err;

	err = access_fault_handler_register(stackres_fault);
	if (err) {
		pr_err("access fault hook busy\n");
		return err;
	}
	err = misc_register(&stackres_misc);
	if (err)
		access_fault_handler_unregister(stackres_fault);
	return err;
}

static void __exit stackres_exit(void)
{
	misc_deregister(&stackres_misc);
	/* Waits for every fault still running stackres_fault(). */
	access_fault_handler_unregister(stackres_fault);
}

module_init(stackres_init);
module_exit(stackres_exit);

MODULE_DESCRIPTION("Stack reservations that grow on demand (/dev/stackres)");
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS(ACCESS_FAULT);
