// SPDX-License-Identifier: GPL-2.0
/*
 * Smoke test of the test pipeline itself: it proves that the guest booted the kernel
 * the harness just built (release string compiled in at build time), on the
 * architecture the harness asked for (harness.arch= on the kernel command line), with
 * both vCPUs online (races are tested elsewhere), and whether the module is loaded.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "../kselftest_harness.h"

static int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	return 0;
}

TEST(kernel_release_is_the_build)
{
#ifndef KERNEL_RELEASE
	SKIP(return, "built without KERNEL_RELEASE (outside the harness)");
#else
	struct utsname u;

	ASSERT_EQ(0, uname(&u));
	EXPECT_STREQ(KERNEL_RELEASE, u.release);
#endif
}

TEST(machine_matches_harness_arch)
{
	char cmdline[4096];
	const char *want;
	struct utsname u;

	ASSERT_EQ(0, read_file("/proc/cmdline", cmdline, sizeof(cmdline)));
	if (strstr(cmdline, "harness.arch=i386"))
		want = "i686";
	else if (strstr(cmdline, "harness.arch=x86_64"))
		want = "x86_64";
	else
		SKIP(return, "not booted by qemu/run (no harness.arch=)");
	ASSERT_EQ(0, uname(&u));
	EXPECT_STREQ(want, u.machine);
}

TEST(two_cpus_online)
{
	char online[64];

	ASSERT_EQ(0, read_file("/sys/devices/system/cpu/online", online, sizeof(online)));
	EXPECT_STREQ("0-1", online);
	EXPECT_EQ(2, sysconf(_SC_NPROCESSORS_ONLN));
}

TEST(stackres_device_present)
{
	struct stat st;

	if (stat("/dev/stackres", &st) != 0)
		SKIP(return, "/dev/stackres absent (module not built or not loaded)");
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0666, st.st_mode & 0777);
}

TEST_HARNESS_MAIN
