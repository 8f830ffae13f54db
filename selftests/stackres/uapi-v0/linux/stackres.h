/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The version 0 header of /dev/stackres, as it was before ABI version 1
 * (uapi/linux/stackres.h from commit ca70773), kept unchanged below this
 * comment so that the existing selftests are built as programs of the old
 * ABI: that they still pass on a version 1 module is the proof that old
 * binaries keep working.  Do not update it; new tests use the real header.
 */
/*
 * /dev/stackres: stack reservations that grow on demand in the page-fault
 * path, with a guard at the bottom, and stack fault upcalls read from the fd.
 *
 * All structures use only __u64/__u32 with explicit padding so that their
 * layout is identical for i386, ia32 compat and x86_64 tasks.  The ioctl
 * numbers encode the structure size (_IOWR); a later version may add larger
 * structures under new numbers.
 */
#ifndef _UAPI_LINUX_STACKRES_H
#define _UAPI_LINUX_STACKRES_H

#include <linux/types.h>
#include <linux/ioctl.h>

/* struct stackres_reg.flags (and stackres_arena.flags: STACKRES_MAP only) */
#define STACKRES_MAP		(1U << 0)	/* module maps the range itself */
#define STACKRES_POPULATE	(1U << 1)	/* populate pages when committing */
#define STACKRES_NOTIFY_GROW	(1U << 2)	/* queue a GROW record per growth */

/* struct stackres_query.flags */
#define STACKRES_QUERY_ADDR	(1U << 0)	/* look up by addr, not by id */
#define STACKRES_QUERY_SLOT	(1U << 1)	/* out: the answer is a dense slot */

/* struct stackres_event.type */
#define STACKRES_EV_GROW	1	/* committed part grew */
#define STACKRES_EV_WATERMARK	2	/* committed reached the watermark */
#define STACKRES_EV_OVERFLOW	3	/* access to the guard */
#define STACKRES_EV_FAILED	4	/* growth failed, err = positive errno */
#define STACKRES_EV_LOST	5	/* committed = number of records dropped */

/* Default growth step when stackres_reg.chunk is 0. */
#define STACKRES_DEFAULT_CHUNK	(64 * 1024)

struct stackres_reg {
	__u64 start;		/* in (0 with STACKRES_MAP: any), out */
	__u64 len;		/* in: page multiple, > 0 */
	__u64 guard;		/* in: bytes at the bottom never committed */
	__u64 commit;		/* in: bytes committed at the top at once */
	__u64 chunk;		/* in: minimum growth step, 0 = default */
	__u64 watermark;	/* in: committed size that raises an event */
	__u32 flags;		/* in: STACKRES_MAP | _POPULATE | _NOTIFY_GROW */
	__u32 id;		/* out: reservation id, never 0 */
};

struct stackres_trim {
	__u32 id;
	__u32 pad;		/* must be 0 */
	__u64 sp;		/* in [start + guard, start + len] */
	__u64 keep;		/* bytes below sp kept committed */
};

struct stackres_query {
	__u32 id;		/* in (by id) / out */
	__u32 flags;		/* in: 0 or STACKRES_QUERY_ADDR */
	__u64 addr;		/* in with STACKRES_QUERY_ADDR */
	__u64 start;		/* out */
	__u64 len;		/* out */
	__u64 guard;		/* out */
	__u64 committed;	/* out: bytes from committed bottom to top */
	__u64 peak;		/* out: largest committed since REGISTER */
	__u64 grow_faults;	/* out: growth steps taken */
	__u64 overflows;	/* out: guard hits */
};

/*
 * Dense mode: one mapping of nslots * slot bytes, each slot a stack whose
 * bottom guard bytes are guard markers (MADV_GUARD_INSTALL), read/write
 * above them and grown by demand paging; one VMA for all of them.
 */
struct stackres_arena {
	__u64 start;		/* in (0 with STACKRES_MAP: any), out */
	__u64 slot;		/* in: bytes per stack, page multiple */
	__u64 nslots;		/* in: number of stacks, > 0 */
	__u64 guard;		/* in: guard bytes per slot, < slot */
	__u32 flags;		/* in: 0 or STACKRES_MAP */
	__u32 id;		/* out: reservation id of the arena */
};

struct stackres_event {
	__u32 type;		/* STACKRES_EV_* */
	__u32 id;		/* reservation id (0 for LOST) */
	__u32 tid;		/* faulting thread, opener's pid namespace */
	__u32 err;		/* FAILED: positive errno, else 0 */
	__u64 addr;		/* fault address (0 for LOST) */
	__u64 committed;	/* after the growth; LOST: records dropped */
};

#define STACKRES_IOC_MAGIC	0xE7

#define STACKRES_IOC_REGISTER	_IOWR(STACKRES_IOC_MAGIC, 0x01, struct stackres_reg)
#define STACKRES_IOC_UNREGISTER	_IOWR(STACKRES_IOC_MAGIC, 0x02, __u32)
#define STACKRES_IOC_TRIM	_IOWR(STACKRES_IOC_MAGIC, 0x03, struct stackres_trim)
#define STACKRES_IOC_QUERY	_IOWR(STACKRES_IOC_MAGIC, 0x04, struct stackres_query)
#define STACKRES_IOC_ARENA	_IOWR(STACKRES_IOC_MAGIC, 0x05, struct stackres_arena)

#endif /* _UAPI_LINUX_STACKRES_H */
