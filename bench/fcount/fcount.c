// SPDX-License-Identifier: GPL-2.0
/*
 * fcount: a QEMU TCG plugin that counts the instructions a guest executes
 * in each kernel function between two user-space markers, so that two
 * kernels (or two configurations of one) can be compared function by
 * function.  bench/fcount/run uses it; bench/README.md says what for.
 *
 *   qemu-system-x86_64 ... -plugin fcount.so,map=System.map,start=0xADDR,
 *                          stop=0xADDR,out=FILE[,split=0xADDR]
 *
 * map:   the guest kernel's System.map; text symbols become the buckets
 *        (an address counts for the symbol at or below it)
 * start: a user-space address; when a translation block starting there
 *        runs, the counters are snapshotted (the marker function of
 *        bench/fcount/toggle.c and pthreads-m.c, linked at a fixed address
 *        no other binary of the guest uses)
 * stop:  the same for the end of a window: FILE gets "WINDOW n total T",
 *        then "count function" lines, most first, then "END n"
 * split: the lowest kernel address (default 0x800000000000; i386: 0xc0000000);
 *        below it everything counts as [user], kernel addresses outside
 *        _stext.._etext (modules) as [module]
 *
 * Every vCPU adds to the same counters without atomics: with more than one
 * vCPU the counts are approximate.  Written against the plugin API of
 * QEMU 7.2 (Debian 12), version 1, which it declares itself so that no QEMU
 * source is needed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id,
					       struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu, void *udata);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
					   qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb,
					  qemu_plugin_vcpu_udata_cb_t cb,
					  enum qemu_plugin_cb_flags flags,
					  void *udata);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn,
						enum qemu_plugin_op op,
						void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb,
						 size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

struct sym {
	uint64_t addr;
	char *name;
};

static struct sym *syms;
static size_t nsyms;
static uint64_t *cnt, *snap;	/* nsyms + 2: [user], [module] */
static uint64_t start_va, stop_va, split = 0x800000000000ULL, stext, etext;
static FILE *out;
static int window;

static int by_addr(const void *a, const void *b)
{
	const struct sym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static size_t bucket(uint64_t va)
{
	size_t lo = 0, hi = nsyms;

	if (va < split)
		return nsyms;
	if (va < stext || va >= etext || !nsyms)
		return nsyms + 1;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;

		if (syms[mid].addr <= va)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static const char *bucket_name(size_t b)
{
	return b < nsyms ? syms[b].name : b == nsyms ? "[user]" : "[module]";
}

static void on_start(unsigned int vcpu, void *udata)
{
	memcpy(snap, cnt, (nsyms + 2) * sizeof(*cnt));
}

static int by_count(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return x[0] < y[0] ? 1 : x[0] > y[0] ? -1 : 0;
}

static void on_stop(unsigned int vcpu, void *udata)
{
	uint64_t (*v)[2] = malloc((nsyms + 2) * sizeof(*v)), total = 0;
	size_t n = 0;

	if (!v)
		return;
	for (size_t i = 0; i < nsyms + 2; i++) {
		uint64_t d = cnt[i] - snap[i];

		if (d) {
			v[n][0] = d;
			v[n++][1] = i;
			total += d;
		}
	}
	qsort(v, n, sizeof(*v), by_count);
	fprintf(out, "WINDOW %d total %llu\n", ++window, (unsigned long long)total);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%llu %s\n", (unsigned long long)v[i][0],
			bucket_name(v[i][1]));
	fprintf(out, "END %d\n", window);
	fflush(out);
	free(v);
}

static void translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	uint64_t va = qemu_plugin_tb_vaddr(tb);
	size_t n = qemu_plugin_tb_n_insns(tb);

	if (va == start_va)
		qemu_plugin_register_vcpu_tb_exec_cb(tb, on_start,
						     QEMU_PLUGIN_CB_NO_REGS, NULL);
	if (va == stop_va)
		qemu_plugin_register_vcpu_tb_exec_cb(tb, on_stop,
						     QEMU_PLUGIN_CB_NO_REGS, NULL);
	for (size_t i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
		size_t b = bucket(qemu_plugin_insn_vaddr(insn));

		qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
							   &cnt[b], 1);
	}
}

static int load_map(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512], name[400], type;
	unsigned long long a;
	size_t cap = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx %c %399s", &a, &type, name) != 3)
			continue;
		if (!strcmp(name, "_stext"))
			stext = a;
		if (!strcmp(name, "_etext"))
			etext = a;
		if (type != 't' && type != 'T' && type != 'w' && type != 'W')
			continue;
		if (nsyms == cap) {
			cap = cap ? 2 * cap : 8192;
			syms = realloc(syms, cap * sizeof(*syms));
			if (!syms)
				return -1;
		}
		syms[nsyms].addr = a;
		syms[nsyms++].name = strdup(name);
	}
	fclose(f);
	qsort(syms, nsyms, sizeof(*syms), by_addr);
	return stext && etext > stext ? 0 : -1;
}

__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
			int argc, char **argv)
{
	const char *map = NULL, *outp = NULL;

	for (int i = 0; i < argc; i++) {
		char *v = strchr(argv[i], '=');

		if (!v)
			continue;
		v++;
		if (!strncmp(argv[i], "map=", 4))
			map = v;
		else if (!strncmp(argv[i], "out=", 4))
			outp = v;
		else if (!strncmp(argv[i], "start=", 6))
			start_va = strtoull(v, NULL, 0);
		else if (!strncmp(argv[i], "stop=", 5))
			stop_va = strtoull(v, NULL, 0);
		else if (!strncmp(argv[i], "split=", 6))
			split = strtoull(v, NULL, 0);
	}
	if (!map || !outp || !start_va || !stop_va || load_map(map)) {
		fprintf(stderr, "fcount: needs map= (with _stext, _etext), out=, start=, stop=\n");
		return -1;
	}
	cnt = calloc(nsyms + 2, sizeof(*cnt));
	snap = calloc(nsyms + 2, sizeof(*snap));
	out = fopen(outp, "w");
	if (!cnt || !snap || !out)
		return -1;
	qemu_plugin_register_vcpu_tb_trans_cb(id, translate);
	return 0;
}
