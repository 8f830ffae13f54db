# stackres + exit_free: top-level entry points. See README.md.
#
#   make run [ARCH=i386] [CMD='...']   build the plain kernel + module, boot it
#   make check                         every test on x86_64, ia32 compat and i386
#   make kselftest [ABI=compat]        the kselftest targets for one ABI
#   make kernel ARCH=... VARIANT=...   just build a kernel (+ kmod)
#   make bench [ARCH=i386]             benchmarks (bench/)
#   make stress [STRESS_S=600]         stress on the debug kernels
#   make check-upstream                the kernel's own kselftests, unpatched vs patched
#   make dense-million                 a million dense stacks in one process

ARCH ?= x86_64
VARIANT ?= plain
ABI ?= $(ARCH)
CMD ?=

.PHONY: all help deps kernel demo run check kselftest check-upstream bench stress dense-million clean distclean

all: kernel

help:
	@sed -n '3,10p' Makefile | sed 's/^# //'

deps:
	@scripts/deps

kernel: deps
	@scripts/build-kernel $(ARCH) $(VARIANT)

# The greenrt demo (examples/greenrt) runs before the shell; qemu/init starts /root/demo.
DEMO := build/examples/$(ARCH)/demo
demo: deps
	@examples/greenrt/build.sh $(ARCH)

run: kernel demo
	@qemu/run --arch $(ARCH) --variant $(VARIANT) --add $(DEMO) $(if $(CMD),-- '$(subst ','\'',$(CMD))')

check:
	@scripts/check

kselftest:
	@scripts/check $(ABI)

# mm (what fits the guest config), futex, clone3, sigaltstack, exec on x86_64.
check-upstream:
	@scripts/check-upstream

# Time-bounded stress on the debug kernels (STRESS_S seconds per arch, default 180).
stress: deps
	@scripts/stress

# 1,000,000 dense slots of 64 KiB (x86_64), the address space's worth on i386.
dense-million: deps
	@scripts/dense-million

bench: deps
	@if [ -x bench/run ]; then bench/run $(ARCH); else echo "bench/ is not there yet"; exit 1; fi

clean:
	rm -rf build/kselftest build/logs build/x86_64-* build/i386-*

distclean:
	rm -rf build
