/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * /dev/stackres: stack reservations that grow on demand in the page-fault
 * path, with a guard at the bottom, and stack fault upcalls read from the fd.
 *
 * All structures use only __u64/__u32 with explicit padding so that their
 * layout is identical for i386, ia32 compat and x86_64 tasks.
 *
 * How the ABI grows (as clone3() and openat2() do): the argument structs of
 * REGISTER, ARENA, TRIM and QUERY gained fields at their end in ABI version
 * 1.  The module takes the size of the caller's struct from the ioctl number
 * (_IOC_SIZE), so a program built against an older header passes the older,
 * smaller struct under the same ioctl number and keeps the older meaning:
 * fields it does not know are zero for it.  The sizes accepted are those of
 * each version (*_SIZE_VER0, *_SIZE_VER1) and anything larger than the
 * latest, which must be zero beyond what the module knows (else E2BIG);
 * any other size is not a request of this module (ENOTTY), as it was for
 * version 0.  The ioctls new in version 1 take their version 1 size or
 * larger (EINVAL below it).  New flags are refused with EINVAL by modules
 * that do not know them.  STACKRES_IOC_FEATURES tells a program what the
 * running module supports.
 */
#ifndef _UAPI_LINUX_STACKRES_H
#define _UAPI_LINUX_STACKRES_H

#include <linux/types.h>
#include <linux/ioctl.h>

/* The ABI version this header describes (STACKRES_IOC_FEATURES.version). */
#define STACKRES_ABI_VERSION	1

/* struct stackres_reg.flags (and stackres_arena.flags: STACKRES_MAP only) */
#define STACKRES_MAP		(1U << 0)	/* module maps the range itself */
#define STACKRES_POPULATE	(1U << 1)	/* populate pages when committing */
#define STACKRES_NOTIFY_GROW	(1U << 2)	/* queue a GROW record per growth */
/*
 * v1: grow and trim at STACKRES_FOLIO_SIZE boundaries and ask for large
 * folios (MADV_HUGEPAGE on the range), so that where the system's policy
 * allows them (transparent_hugepage/hugepages-64kB/enabled: madvise or
 * always) a growth step is mapped with one fault per 64 KiB, not per page.
 * chunk must be a multiple of STACKRES_FOLIO_SIZE.
 */
#define STACKRES_LARGE_FOLIOS	(1U << 3)

/* The step STACKRES_LARGE_FOLIOS aligns growth and trims to. */
#define STACKRES_FOLIO_SIZE	(64 * 1024)

/* struct stackres_query.flags */
#define STACKRES_QUERY_ADDR	(1U << 0)	/* in: look up by addr, not by id */
#define STACKRES_QUERY_SLOT	(1U << 1)	/* out: the answer is a dense slot */
/* in, v1: with _ADDR, any stackres file of this process, not only this one */
#define STACKRES_QUERY_ANY	(1U << 2)
#define STACKRES_QUERY_GUARD	(1U << 3)	/* out, v1: addr is in the guard */
/* out, v1: the reservation is another file's; id is that file's id */
#define STACKRES_QUERY_FOREIGN	(1U << 4)

/*
 * struct stackres_trim.flags, v1: the target is the reservation or arena
 * slot whose (start, end] holds sp, not an id (id must be 0).
 */
#define STACKRES_TRIM_ADDR	(1U << 0)

/* struct stackres_event.type */
#define STACKRES_EV_GROW	1	/* committed part grew */
#define STACKRES_EV_WATERMARK	2	/* committed reached the watermark */
#define STACKRES_EV_OVERFLOW	3	/* access to the guard */
#define STACKRES_EV_FAILED	4	/* growth failed, err = positive errno */
#define STACKRES_EV_LOST	5	/* committed = number of records dropped */

/* struct stackres_record.origin (v1): who made the access */
#define STACKRES_ORIGIN_USER	1	/* the task, in user mode */
/* the kernel on the task's behalf: copy_to/from_user(), a signal frame */
#define STACKRES_ORIGIN_KERNEL	2
#define STACKRES_ORIGIN_IFETCH	3	/* an instruction fetch by the task */

/* struct stackres_record.flags (v1) */
#define STACKRES_RECORD_SLOT	(1U << 0)	/* slot is an arena slot index */

/* struct stackres_entry.flags (v1) */
#define STACKRES_ENTRY_ARENA	(1U << 0)	/* the entry is an arena */

/* Default growth step when stackres_reg.chunk is 0. */
#define STACKRES_DEFAULT_CHUNK	(64 * 1024)

/**
 * struct stackres_reg - argument of STACKRES_IOC_REGISTER
 * @start: in: start of the range (0 with STACKRES_MAP: anywhere); out
 * @len: in: page multiple, > 0
 * @guard: in: bytes at the bottom that are never committed
 * @commit: in: bytes committed at the top at once
 * @chunk: in: minimum growth step, 0 = STACKRES_DEFAULT_CHUNK
 * @watermark: in: committed size that raises a WATERMARK record, 0 = none
 * @flags: in: STACKRES_MAP | STACKRES_POPULATE | STACKRES_NOTIFY_GROW |
 *	STACKRES_LARGE_FOLIOS (v1)
 * @id: out: reservation id, never 0, unique among this file's
 * @user_data: in, v1: the caller's cookie; QUERY, LIST and every record of
 *	the reservation return it
 * @align: in, v1: with STACKRES_MAP and @start 0, the alignment of the
 *	mapping: a power of two, at least the page size; 0 = page size
 */
struct stackres_reg {
	__u64 start;
	__u64 len;
	__u64 guard;
	__u64 commit;
	__u64 chunk;
	__u64 watermark;
	__u32 flags;
	__u32 id;
	/* ABI version 1 */
	__u64 user_data;
	__u64 align;
};

#define STACKRES_REG_SIZE_VER0		56
#define STACKRES_REG_SIZE_VER1		72

/**
 * struct stackres_trim - argument of STACKRES_IOC_TRIM, entry of TRIM_VEC
 * @id: the reservation or arena; 0 with STACKRES_TRIM_ADDR
 * @pad: version 0 name of @flags (must be 0 there)
 * @flags: v1: 0 or STACKRES_TRIM_ADDR
 * @sp: in [start + guard, start + len] of the reservation, or of the slot
 * @keep: bytes below @sp kept committed
 * @committed: out, v1: committed bytes of the reservation (resident bytes
 *	of the slot for an arena) after the trim
 * @reserved: v1: must be 0 (room for a later answer; it also keeps the
 *	version 1 size apart from sizes a version 0 program was refused with)
 */
struct stackres_trim {
	__u32 id;
	union {
		__u32 pad;
		__u32 flags;
	};
	__u64 sp;
	__u64 keep;
	/* ABI version 1 */
	__u64 committed;
	__u64 reserved;
};

#define STACKRES_TRIM_SIZE_VER0		24
#define STACKRES_TRIM_SIZE_VER1		40

/**
 * struct stackres_query - argument of STACKRES_IOC_QUERY
 * @id: in (by id) / out
 * @flags: in: 0 or STACKRES_QUERY_ADDR [| STACKRES_QUERY_ANY];
 *	out: also STACKRES_QUERY_SLOT, _GUARD, _FOREIGN
 * @addr: in with STACKRES_QUERY_ADDR
 * @start: out: the reservation, arena or (by address) slot
 * @len: out
 * @guard: out: guard bytes at the bottom (of each slot for an arena)
 * @committed: out: bytes from committed bottom to top (for an arena or a
 *	slot: the bytes above the guards, all read/write; see @resident)
 * @peak: out: largest committed since REGISTER
 * @grow_faults: out: growth steps taken
 * @overflows: out: guard hits
 * @user_data: out, v1: as given at REGISTER or ARENA
 * @slot: out, v1: with STACKRES_QUERY_SLOT, the slot's index in its arena
 * @resident: out, v1: bytes of the answer's range present in memory
 */
struct stackres_query {
	__u32 id;
	__u32 flags;
	__u64 addr;
	__u64 start;
	__u64 len;
	__u64 guard;
	__u64 committed;
	__u64 peak;
	__u64 grow_faults;
	__u64 overflows;
	/* ABI version 1 */
	__u64 user_data;
	__u64 slot;
	__u64 resident;
};

#define STACKRES_QUERY_SIZE_VER0	72
#define STACKRES_QUERY_SIZE_VER1	96

/**
 * struct stackres_arena - argument of STACKRES_IOC_ARENA
 * @start: in: start (0 with STACKRES_MAP: anywhere); out
 * @slot: in: bytes per stack, page multiple
 * @nslots: in: number of stacks, > 0
 * @guard: in: guard bytes per slot, < @slot
 * @flags: in: 0 or STACKRES_MAP
 * @id: out: reservation id of the arena
 * @user_data: in, v1: the caller's cookie for the arena (records and
 *	answers carry the slot index beside it)
 * @align: in, v1: as for struct stackres_reg
 *
 * Dense mode: one mapping of @nslots * @slot bytes, each slot a stack whose
 * bottom @guard bytes are guard markers (MADV_GUARD_INSTALL), read/write
 * above them and grown by demand paging; one VMA for all of them.
 */
struct stackres_arena {
	__u64 start;
	__u64 slot;
	__u64 nslots;
	__u64 guard;
	__u32 flags;
	__u32 id;
	/* ABI version 1 */
	__u64 user_data;
	__u64 align;
};

#define STACKRES_ARENA_SIZE_VER0	40
#define STACKRES_ARENA_SIZE_VER1	56

/**
 * struct stackres_event - a record read() returns, version 0 (32 bytes)
 * @type: STACKRES_EV_*
 * @id: reservation id (0 for LOST)
 * @tid: faulting thread, in the opener's pid namespace
 * @err: FAILED: positive errno, else 0
 * @addr: fault address (0 for LOST)
 * @committed: after the growth; LOST: number of records dropped
 */
struct stackres_event {
	__u32 type;
	__u32 id;
	__u32 tid;
	__u32 err;
	__u64 addr;
	__u64 committed;
};

/**
 * struct stackres_record - a record read() returns, version 1 (64 bytes)
 * @type: as struct stackres_event, whose layout the first 32 bytes keep
 * @id: as struct stackres_event
 * @tid: as struct stackres_event
 * @err: as struct stackres_event
 * @addr: as struct stackres_event
 * @committed: as struct stackres_event
 * @user_data: the reservation's or arena's cookie (0 for LOST)
 * @slot: with STACKRES_RECORD_SLOT: the arena slot @addr lies in
 * @origin: STACKRES_ORIGIN_* (0 for LOST)
 * @flags: STACKRES_RECORD_SLOT
 * @reserved: 0
 *
 * A file returns version 1 records once STACKRES_IOC_RECORD_SIZE set it to
 * sizeof(struct stackres_record); until then version 0.
 */
struct stackres_record {
	__u32 type;
	__u32 id;
	__u32 tid;
	__u32 err;
	__u64 addr;
	__u64 committed;
	__u64 user_data;
	__u64 slot;
	__u32 origin;
	__u32 flags;
	__u64 reserved;
};

#define STACKRES_RECORD_SIZE_VER0	32
#define STACKRES_RECORD_SIZE_VER1	64

/**
 * struct stackres_trim_vec - argument of STACKRES_IOC_TRIM_VEC (v1)
 * @trims: in: address of an array of @count struct stackres_trim
 * @count: in: entries, at most STACKRES_IOC_FEATURES.trim_vec_max
 * @entry_size: in: size of one entry: STACKRES_TRIM_SIZE_VER0, _VER1 or
 *	larger; from VER1 on each trimmed entry's @committed is written back
 * @done: out: entries trimmed; on error, the index of the entry that failed
 *	(entries before it are trimmed, it and those after are untouched)
 * @flags: in: 0
 */
struct stackres_trim_vec {
	__u64 trims;
	__u32 count;
	__u32 entry_size;
	__u32 done;
	__u32 flags;
};

/**
 * struct stackres_entry - one reservation or arena in a LIST answer (v1)
 * @user_data: as given at REGISTER or ARENA
 * @start: start of the range
 * @len: length of the range
 * @committed: reservation: committed bytes; arena: resident bytes
 * @id: reservation id
 * @flags: STACKRES_ENTRY_ARENA
 */
struct stackres_entry {
	__u64 user_data;
	__u64 start;
	__u64 len;
	__u64 committed;
	__u32 id;
	__u32 flags;
};

#define STACKRES_ENTRY_SIZE_VER1	40

/**
 * struct stackres_list - argument of STACKRES_IOC_LIST (v1)
 * @entries: in: address of room for @count entries, or 0 for totals only
 * @count: in: room in @entries
 * @entry_size: in: size of one entry: STACKRES_ENTRY_SIZE_VER1 or larger
 *	(the part the module does not know is zeroed)
 * @next_id: in: first id to report (0: from the lowest); out: where to go
 *	on from in the next call, 0 when every reservation was reported
 * @filled: out: entries written
 * @flags: in: 0
 * @pad: 0
 * @nr_res: out: live reservations and arenas of this file
 * @committed: out: the sum of every entry's committed bytes
 *
 * Reservations are reported in id order; @nr_res and @committed always
 * cover all of them, whatever @count is.
 */
struct stackres_list {
	__u64 entries;
	__u32 count;
	__u32 entry_size;
	__u32 next_id;
	__u32 filled;
	__u32 flags;
	__u32 pad;
	__u64 nr_res;
	__u64 committed;
};

/**
 * struct stackres_features - answer of STACKRES_IOC_FEATURES (v1)
 * @version: STACKRES_ABI_VERSION of the module
 * @record_size: largest record size STACKRES_IOC_RECORD_SIZE accepts
 * @ioctls: bit n set: the ioctl of number n (_IOC_NR) is supported
 * @reg_flags: flags REGISTER accepts
 * @arena_flags: flags ARENA accepts
 * @trim_flags: flags TRIM and TRIM_VEC entries accept
 * @query_flags: flags QUERY accepts as input
 * @reg_size: size of the struct stackres_reg the module knows
 * @arena_size: size of the struct stackres_arena the module knows
 * @trim_size: size of the struct stackres_trim the module knows
 * @query_size: size of the struct stackres_query the module knows
 * @entry_size: size of the struct stackres_entry the module knows
 * @trim_vec_max: most entries of one TRIM_VEC call
 * @max_reservations: live reservations per process, over all its files
 * @queue_len: records queued per file before they count as lost
 * @page_size: page size: the unit of every length and address
 * @chunk_max: largest growth step (and reservation) the module accepts
 *
 * A larger struct from a later header gets its known part filled and the
 * rest zeroed; a module without this ioctl (version 0) answers ENOTTY.
 */
struct stackres_features {
	__u32 version;
	__u32 record_size;
	__u64 ioctls;
	__u64 reg_flags;
	__u64 arena_flags;
	__u64 trim_flags;
	__u64 query_flags;
	__u32 reg_size;
	__u32 arena_size;
	__u32 trim_size;
	__u32 query_size;
	__u32 entry_size;
	__u32 trim_vec_max;
	__u32 max_reservations;
	__u32 queue_len;
	__u64 page_size;
	__u64 chunk_max;
};

#define STACKRES_FEATURES_SIZE_VER1	96

#define STACKRES_IOC_MAGIC	0xE7

#define STACKRES_IOC_REGISTER	_IOWR(STACKRES_IOC_MAGIC, 0x01, struct stackres_reg)
#define STACKRES_IOC_UNREGISTER	_IOWR(STACKRES_IOC_MAGIC, 0x02, __u32)
#define STACKRES_IOC_TRIM	_IOWR(STACKRES_IOC_MAGIC, 0x03, struct stackres_trim)
#define STACKRES_IOC_QUERY	_IOWR(STACKRES_IOC_MAGIC, 0x04, struct stackres_query)
#define STACKRES_IOC_ARENA	_IOWR(STACKRES_IOC_MAGIC, 0x05, struct stackres_arena)
/* ABI version 1 */
#define STACKRES_IOC_FEATURES	_IOR(STACKRES_IOC_MAGIC, 0x06, struct stackres_features)
#define STACKRES_IOC_RECORD_SIZE _IOW(STACKRES_IOC_MAGIC, 0x07, __u32)
#define STACKRES_IOC_TRIM_VEC	_IOWR(STACKRES_IOC_MAGIC, 0x08, struct stackres_trim_vec)
#define STACKRES_IOC_LIST	_IOWR(STACKRES_IOC_MAGIC, 0x09, struct stackres_list)

#endif /* _UAPI_LINUX_STACKRES_H */
