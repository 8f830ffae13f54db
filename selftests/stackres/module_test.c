// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/stackres: module lifetime.  stackres.ko cannot be unloaded while a
 * file is open; once every fd is closed it unloads (mappings made through
 * it stay as plain memory), reloads from /lib/modules/stackres.ko, and
 * works again.  Unload and reload while other threads keep taking access
 * faults (which all go through the fault hook) must be safe.
 *
 * Runs last in the target: it always tries to leave the module loaded.
 */
#include "stackres_util.h"

#define KO_PATH	"/lib/modules/stackres.ko"

static int unload(void)
{
	return syscall(SYS_delete_module, "stackres", O_NONBLOCK) ? -errno : 0;
}

static int load(void)
{
	int fd = open(KO_PATH, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	ret = syscall(SYS_finit_module, fd, "", 0) ? -errno : 0;
	close(fd);
	return ret;
}

static bool loaded(void)
{
	return !access("/sys/module/stackres", F_OK);
}

/* Why unload cannot be tested here, or NULL. */
static const char *cannot_unload(void)
{
	if (access(KO_PATH, R_OK))
		return KO_PATH " not found in the guest";
	if (access("/sys/module/stackres/refcnt", R_OK))
		return "stackres is built in or the kernel lacks MODULE_UNLOAD";
	if (geteuid())
		return "not root";
	return NULL;
}

FIXTURE(mod) {
	int fd;
};

FIXTURE_SETUP(mod)
{
	const char *why;

	SR_OPEN_OR_SKIP(self->fd, O_NONBLOCK);
	why = cannot_unload();
	if (why)
		SKIP(return, "%s", why);
	ASSERT_EQ(0, sr_install_fault_handler());
}

FIXTURE_TEARDOWN(mod)
{
	if (self->fd >= 0)
		close(self->fd);
	/* Never leave the guest without the module. */
	if (!loaded())
		load();
}

TEST_F(mod, unload_refused_while_open_then_reload)
{
	struct stackres_query q;
	struct stackres_reg r;
	uint64_t top;
	int ret;

	ASSERT_EQ(0, sr_reg_range(self->fd, &r, NULL, 256 * KIB, PG, 0, 0, 0, STACKRES_MAP));
	top = r.start + 256 * KIB;
	EXPECT_FALSE(SR_TRY(SR_WRITE(top - 1, 3)));

	/* An open file pins the module. */
	ret = unload();
	EXPECT_TRUE(ret == -EWOULDBLOCK || ret == -EAGAIN) TH_LOG("delete_module: %d", ret);
	ASSERT_TRUE(loaded());
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(64 * KIB, q.committed);

	/* Closed: it unloads, and the device is gone. */
	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(0, unload());
	EXPECT_FALSE(loaded());
	errno = 0;
	EXPECT_EQ(-1, open(SR_DEV, O_RDWR));
	EXPECT_EQ(ENOENT, errno);
	/* The mapping stays: committed data readable, the rest plain PROT_NONE. */
	EXPECT_EQ(3, *(volatile char *)sr_ptr(top - 1));
	EXPECT_TRUE(SR_TRY(SR_WRITE(top - 64 * KIB - 1, 1)));
	EXPECT_EQ(SEGV_ACCERR, sr_sig.code);
	EXPECT_EQ(top - 64 * KIB - 1, sr_sig.addr);

	/* Reloaded, it works again, on the very same range too. */
	ASSERT_EQ(0, load());
	self->fd = open(SR_DEV, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, sr_reg_range(self->fd, &r, sr_ptr(r.start), 256 * KIB, PG, 0, 0, 0, 0));
	EXPECT_FALSE(SR_TRY(SR_WRITE(top - 64 * KIB - 1, 1)));
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(64 * KIB + PG, q.committed);	/* commit 0: down to that page */
	EXPECT_EQ(1, q.grow_faults);
}

/* Unload/reload cycles while threads take access faults all the time. */
static volatile int stop_faulting;
static _Atomic unsigned long faults_taken;

static void *faulter(void *arg)
{
	char *none = arg;

	sr_altstack();
	while (!stop_faulting) {
		if (SR_TRY(SR_WRITE(sr_u64(none) + 100, 1)) && sr_sig.code == SEGV_ACCERR)
			faults_taken++;
	}
	return NULL;
}

TEST_F_TIMEOUT(mod, unload_reload_with_faults_in_flight, 120)
{
	char *none = sr_map_isolated(PG, PROT_NONE);
	unsigned long before;
	pthread_t t[2];
	int i, fd;

	ASSERT_NE(0, sr_u64(none));
	close(self->fd);
	self->fd = -1;
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, faulter, none));
	for (i = 0; i < 5; i++) {
		before = faults_taken;
		ASSERT_EQ(0, unload()) TH_LOG("cycle %d", i);
		usleep(20 * 1000);
		ASSERT_EQ(0, load()) TH_LOG("cycle %d", i);
		/* Still delivered as plain access faults. */
		while (faults_taken == before)
			usleep(1000);
	}
	stop_faulting = 1;
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);

	/* Loaded and working. */
	fd = open(SR_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	close(fd);
	EXPECT_LT(5, faults_taken);
}

TEST_HARNESS_MAIN
