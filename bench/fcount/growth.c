// SPDX-License-Identifier: GPL-2.0
/*
 * The growth cases of bench/stackbench.c for bench/fcount: an 8 MiB stack
 * (2,048 pages) touched top-down, one byte per page, each kind in a window
 * of its own:
 *
 *   lazy                   fresh RW MAP_NORESERVE mapping: demand faults
 *   stackres               REGISTER|MAP, commit 0, default chunk (64 KiB)
 *   stackres-populate      the same with STACKRES_POPULATE
 *   stackres-folios        STACKRES_LARGE_FOLIOS, 64 KiB guard, 64 KiB-aligned
 *   stackres-folios-populate  the same with STACKRES_POPULATE
 *
 * Around each window it prints the 64 KiB mTHP counters of the guest
 * (anon_fault_alloc, anon_fault_fallback, ...) as "fcount-thp NAME
 * COUNTER DELTA", so the profile says whether the folios were allocated.
 * Prints "fcount-window NAME" before each window.
 *
 *   growth [SAMPLES]    (default 1: one stack of each kind per window)
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <linux/stackres.h>

#define PG	4096UL
#define LEN	(8UL << 20)
#define FOLIO	STACKRES_FOLIO_SIZE
#define STATS	"/sys/kernel/mm/transparent_hugepage/hugepages-64kB/stats"
#define MAXC	32

void fcount_start(void);
void fcount_stop(void);

static char cname[MAXC][256];
static unsigned long long cval[MAXC];
static int ncnt;

/* Read the counters; with @name, print how much each moved since. */
static void thp_counters(const char *name)
{
	DIR *d = opendir(STATS);
	struct dirent *e;
	int i = 0;

	if (!d)
		return;
	while ((e = readdir(d)) && i < MAXC) {
		char path[400], buf[32];
		unsigned long long v;
		int fd;
		ssize_t n;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), STATS "/%s", e->d_name);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = 0;
		v = strtoull(buf, NULL, 10);
		if (name && !strcmp(cname[i], e->d_name) && v != cval[i])
			printf("fcount-thp %s %s %llu\n", name, e->d_name,
			       v - cval[i]);
		snprintf(cname[i], sizeof(cname[i]), "%s", e->d_name);
		cval[i++] = v;
	}
	ncnt = i;
	closedir(d);
}

static void touch_down(char *top)
{
	for (unsigned long off = PG; off <= LEN; off += PG)
		((volatile char *)top)[-(long)off] = 1;
}

/* Kind 0 lazy, 1 stackres, 2 folios: the top; base and len to unmap. */
static char *make(int fd, int kind, unsigned int flags, char **base,
		  size_t *len)
{
	struct stackres_reg r = { .flags = STACKRES_MAP | flags };

	if (kind == 0) {
		*len = LEN;
		*base = mmap(NULL, LEN, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		return *base == MAP_FAILED ? NULL : *base + LEN;
	}
	if (kind == 1) {
		r.len = LEN + PG;
		r.guard = PG;
	} else {
		r.len = LEN + FOLIO;
		r.guard = FOLIO;
		r.align = FOLIO;
		r.flags |= STACKRES_LARGE_FOLIOS;
	}
	if (ioctl(fd, STACKRES_IOC_REGISTER, &r)) {
		perror("growth: REGISTER");
		return NULL;
	}
	*base = (char *)(unsigned long)r.start;
	*len = r.len;
	return *base + r.len;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int kind;
		unsigned int flags;
	} k[] = {
		{ "lazy", 0, 0 },
		{ "stackres", 1, 0 },
		{ "stackres-populate", 1, STACKRES_POPULATE },
		{ "stackres-folios", 2, 0 },
		{ "stackres-folios-populate", 2, STACKRES_POPULATE },
	};
	int samples = argc > 1 ? atoi(argv[1]) : 1;
	int fd = open("/dev/stackres", O_RDWR);

	if (fd < 0) {
		perror("growth: /dev/stackres");
		return 1;
	}
	for (unsigned int i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
		char *top[17], *base[17];
		size_t len[17];
		int n = samples < 16 ? samples : 16;

		/* A warm-up stack outside the window, then fresh ones. */
		for (int s = 0; s <= n; s++) {
			top[s] = make(fd, k[i].kind, k[i].flags,
					   &base[s], &len[s]);
			if (!top[s])
				return 1;
			if (s == 0) {
				touch_down(top[0]);
				munmap(base[0], len[0]);
			}
		}
		thp_counters(NULL);
		printf("fcount-window growth-%s\n", k[i].name);
		fflush(stdout);
		fcount_start();
		for (int s = 1; s <= n; s++)
			touch_down(top[s]);
		fcount_stop();
		thp_counters(k[i].name);
		fflush(stdout);
		for (int s = 1; s <= n; s++)
			munmap(base[s], len[s]);
	}
	return 0;
}
