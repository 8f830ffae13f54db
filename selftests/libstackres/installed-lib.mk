# SPDX-License-Identifier: MIT
# The library as a user gets it: built and installed into $(LIB_DESTDIR) in
# the build directory, so a test is compiled with nothing but
# $$($(PKG_ENV) pkg-config --cflags --libs --static stackres).
# Included after ../lib.mk (it needs OUTPUT) by selftests/libstackres and
# selftests/examples; PROJECT_DIR is the project root.

# The library gets the compiler without -static (it builds a .so too).
LIB_CC := $(filter-out -static,$(CC))
LIB_DESTDIR := $(OUTPUT)/destdir
LIB_PREFIX := /opt/stackres
PKG_ENV := PKG_CONFIG_SYSROOT_DIR=$(LIB_DESTDIR) \
	PKG_CONFIG_LIBDIR=$(LIB_DESTDIR)$(LIB_PREFIX)/lib/pkgconfig

.PHONY: FORCE
$(LIB_DESTDIR)/.installed: FORCE
	@$(MAKE) -s -C $(PROJECT_DIR)/lib O=$(OUTPUT)/lib-build CC="$(LIB_CC)" \
		PREFIX=$(LIB_PREFIX) DESTDIR=$(LIB_DESTDIR) install
	@touch $@
