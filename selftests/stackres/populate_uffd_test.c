// SPDX-License-Identifier: GPL-2.0
/*
 * STACKRES_POPULATE on a range registered with userfaultfd (MISSING mode).
 *
 * Growth populates the new chunk with mmap_lock held for reading and
 * FOLL_UNLOCKABLE semantics: a page that needs the userfaultfd handler stops
 * populating there (best effort, as MAP_POPULATE), and the access that
 * caused the growth is completed by the handler as any missing-page fault
 * (stackres(4), STACKRES_POPULATE).  The old kernel populated under the
 * write lock without FAULT_FLAG_ALLOW_RETRY: handle_userfault() refused,
 * and debug kernels printed "FAULT_FLAG_ALLOW_RETRY missing" with a stack
 * dump.
 *
 * A handler thread answers every fault with UFFDIO_COPY of a page whose
 * bytes name its address.  The test touches the page just below the
 * committed part, then reads every page of the new chunk, and asserts: the
 * accesses complete (no signal, no hang), every page holds the handler's
 * data, the handler saw exactly one fault per page of the chunk (nothing was
 * filled behind its back) and none outside it, one growth step was taken,
 * and the kernel log has no "FAULT_FLAG_ALLOW_RETRY missing".
 */
#include <linux/userfaultfd.h>
#include <stdatomic.h>
#include "stackres_util.h"

#define NPAGES		16
#define GUARD_PAGES	2
#define COMMIT_PAGES	2
#define CHUNK_PAGES	4
#define MAX_FAULTS	64

struct uffd_handler {
	int uffd;
	atomic_int stop;
	uint64_t lo, hi;		/* the registered range */
	int faults, outside, eexist, copy_err;
	uint64_t addr[MAX_FAULTS];
	char *src;
};

static uint8_t page_byte(uint64_t page)
{
	return sr_pattern(page) ^ 0x5a;
}

static void *uffd_handler_fn(void *arg)
{
	struct uffd_handler *h = arg;

	while (!h->stop) {
		struct pollfd pfd = { .fd = h->uffd, .events = POLLIN };
		struct uffd_msg msg;
		struct uffdio_copy c;
		uint64_t page;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		if (read(h->uffd, &msg, sizeof(msg)) != sizeof(msg))
			continue;
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		page = msg.arg.pagefault.address & ~(PG - 1);
		if (h->faults < MAX_FAULTS)
			h->addr[h->faults] = page;
		h->faults++;
		if (page < h->lo || page >= h->hi)
			h->outside++;
		memset(h->src, page_byte(page), PG);
		memset(&c, 0, sizeof(c));
		c.dst = page;
		c.src = sr_u64(h->src);
		c.len = PG;
		if (ioctl(h->uffd, UFFDIO_COPY, &c)) {
			if (errno == EEXIST)
				h->eexist++;
			else
				h->copy_err = errno;
		}
	}
	return NULL;
}

static void on_alarm(int sig)
{
	static const char msg[] = "# hung: the access did not complete in 20 s\n";

	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(96);
	_exit(95);
}

/* Count kernel log records since @fd was opened that contain @needle. */
static int kmsg_count(int fd, const char *needle)
{
	char rec[2048];
	int n = 0;
	ssize_t len;

	for (;;) {
		len = read(fd, rec, sizeof(rec) - 1);
		if (len < 0 && errno == EPIPE)
			continue;	/* overwritten records */
		if (len <= 0)
			break;
		rec[len] = 0;
		if (strstr(rec, needle))
			n++;
	}
	return n;
}

TEST(populate_with_userfaultfd_missing)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register ur;
	struct uffd_handler h;
	struct stackres_query q;
	struct stackres_reg r;
	uint64_t top, bottom, touch, a;
	pthread_t thr;
	int fd, kmsg, i, j, seen;
	char *p;

	SR_OPEN_OR_SKIP(fd, O_NONBLOCK);
	ASSERT_EQ(0, sr_install_fault_handler());

	memset(&h, 0, sizeof(h));
	h.uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (h.uffd < 0 && (errno == ENOSYS || errno == EPERM))
		SKIP(return, "userfaultfd: %s (CONFIG_USERFAULTFD off or not allowed)",
		     strerror(errno));
	ASSERT_LE(0, h.uffd) TH_LOG("userfaultfd: %s", strerror(errno));
	ASSERT_EQ(0, ioctl(h.uffd, UFFDIO_API, &api)) TH_LOG("UFFDIO_API: %s", strerror(errno));

	p = sr_map_isolated(NPAGES * PG, PROT_NONE);
	ASSERT_NE(NULL, p);
	/* The top is committed (and populated) before userfaultfd sees it. */
	ASSERT_EQ(0, sr_reg_range(fd, &r, p, NPAGES * PG, GUARD_PAGES * PG,
				  COMMIT_PAGES * PG, CHUNK_PAGES * PG, 0,
				  STACKRES_POPULATE));
	top = r.start + r.len;
	bottom = top - COMMIT_PAGES * PG;

	memset(&ur, 0, sizeof(ur));
	ur.range.start = sr_u64(p);
	ur.range.len = NPAGES * PG;
	ur.mode = UFFDIO_REGISTER_MODE_MISSING;
	ASSERT_EQ(0, ioctl(h.uffd, UFFDIO_REGISTER, &ur))
		TH_LOG("UFFDIO_REGISTER: %s", strerror(errno));
	ASSERT_TRUE(ur.ioctls & (1ULL << _UFFDIO_COPY));

	h.lo = sr_u64(p);
	h.hi = top;
	h.src = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, h.src);
	ASSERT_EQ(0, pthread_create(&thr, NULL, uffd_handler_fn, &h));

	/* Records from here on: no "FAULT_FLAG_ALLOW_RETRY missing". */
	kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (kmsg >= 0)
		lseek(kmsg, 0, SEEK_END);

	signal(SIGALRM, on_alarm);
	alarm(20);
	touch = bottom - PG;
	EXPECT_FALSE(SR_TRY(SR_READ(touch)))
		TH_LOG("signal %d code %d at %#llx", sr_sig.signo, sr_sig.code,
		       (unsigned long long)sr_sig.addr);
	EXPECT_EQ(page_byte(touch), *(volatile uint8_t *)sr_ptr(touch));
	/* The rest of the new chunk: the handler's data, page by page. */
	for (a = bottom - CHUNK_PAGES * PG; a < bottom; a += PG) {
		EXPECT_FALSE(SR_TRY(SR_READ(a + PG - 1)));
		EXPECT_EQ(page_byte(a), *(volatile uint8_t *)sr_ptr(a))
			TH_LOG("page %#llx", (unsigned long long)a);
		EXPECT_EQ(page_byte(a), *(volatile uint8_t *)sr_ptr(a + PG - 1));
	}
	alarm(0);
	h.stop = 1;
	pthread_join(thr, NULL);

	TH_LOG("handler: %d faults, %d outside, %d EEXIST", h.faults, h.outside, h.eexist);
	EXPECT_EQ(0, h.copy_err) TH_LOG("UFFDIO_COPY: %s", strerror(h.copy_err));
	EXPECT_EQ(0, h.outside);
	EXPECT_EQ(0, h.eexist);
	EXPECT_EQ(CHUNK_PAGES, h.faults);
	for (a = bottom - CHUNK_PAGES * PG; a < bottom; a += PG) {
		for (seen = 0, i = 0; i < h.faults && i < MAX_FAULTS; i++)
			seen += h.addr[i] == a;
		EXPECT_EQ(1, seen) TH_LOG("faults at page %#llx", (unsigned long long)a);
	}
	/* One growth step of one chunk; the top pages never faulted. */
	ASSERT_EQ(0, sr_query(fd, r.id, &q));
	EXPECT_EQ((COMMIT_PAGES + CHUNK_PAGES) * PG, q.committed);
	EXPECT_EQ(1, q.grow_faults);
	for (j = 0; j < COMMIT_PAGES; j++)
		EXPECT_EQ(0, *(volatile uint8_t *)sr_ptr(bottom + j * PG));

	if (kmsg >= 0) {
		EXPECT_EQ(0, kmsg_count(kmsg, "FAULT_FLAG_ALLOW_RETRY missing"))
			TH_LOG("populated a userfaultfd range without ALLOW_RETRY");
		close(kmsg);
	}
	close(h.uffd);
	close(fd);
	munmap(p, NPAGES * PG);
}

TEST_HARNESS_MAIN
