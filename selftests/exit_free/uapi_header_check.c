/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Compiled by the Makefile as C89..C2x and C++98..C++20: <linux/exit_free.h>
 * stands alone and gives the ABI values.
 */
#include <linux/exit_free.h>

typedef char exit_free_nr_is_463[__NR_exit_free == 463 ? 1 : -1];
typedef char exit_free_flag_values[(EXIT_FREE_U32 == 1 &&
				    EXIT_FREE_WAKE == 2 &&
				    EXIT_FREE_PRIVATE == 4) ? 1 : -1];
