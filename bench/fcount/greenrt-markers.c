// SPDX-License-Identifier: GPL-2.0
/*
 * The window of the greenrt case of bench/fcount: the demo
 * (examples/greenrt/demo.c) is compiled with -Dgr_init=fcount_gr_init
 * -Dgr_shutdown=fcount_gr_shutdown, so the window opens once the runtime is
 * set up and closes before it unmaps its stacks.
 */
#include "greenrt.h"

void fcount_start(void);
void fcount_stop(void);
int fcount_gr_init(const struct gr_config *cfg);
void fcount_gr_shutdown(void);

int fcount_gr_init(const struct gr_config *cfg)
{
	int r = gr_init(cfg);

	fcount_start();
	return r;
}

void fcount_gr_shutdown(void)
{
	fcount_stop();
	gr_shutdown();
}
