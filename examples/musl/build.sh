#!/bin/bash
# examples/musl/build.sh [ARCH...] [--variant stock|exitfree|all]
#
# Build a static musl and a musl-gcc wrapper under build/musl/VARIANT-ARCH/
# (ARCH x86_64 or i386; default both; VARIANT default exitfree):
#   stock     Debian's musl as it comes (apt-get source musl)
#   exitfree  the same with examples/musl/patches/*.patch applied by git am
# Incremental: the source is fetched once, a tree is patched again only when the
# patches change, and a build is redone only when its tree changed.
# Usage afterwards: build/musl/exitfree-x86_64/bin/musl-gcc -static prog.c
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$root/build/musl
archs=() variants=(exitfree)
while [ $# -gt 0 ]; do
	case $1 in
	x86_64|i386) archs+=("$1") ;;
	--variant) shift; case ${1:-} in all) variants=(stock exitfree) ;; stock|exitfree) variants=("$1") ;;
		   *) echo "musl: unknown variant '${1:-}'" >&2; exit 2 ;; esac ;;
	*) echo "usage: $0 [x86_64] [i386] [--variant stock|exitfree|all]" >&2; exit 2 ;;
	esac
	shift
done
[ ${#archs[@]} -gt 0 ] || archs=(x86_64 i386)
log() { echo "musl: $*" >&2; }

# 1. Debian's source package, once (scripts/deps adds the deb-src entry).
src=$out/src
if [ ! -f "$src/.fetched" ]; then
	rm -rf "$src"; mkdir -p "$src"
	log "apt-get source musl"
	(cd "$src" && apt-get source -q musl >"$out/fetch.log" 2>&1) ||
		{ cat "$out/fetch.log" >&2; log "apt-get source musl failed (run scripts/deps as root)"; exit 1; }
	touch "$src/.fetched"
fi
pristine=$(find "$src" -mindepth 1 -maxdepth 1 -type d -name 'musl-*' | head -1)
[ -n "$pristine" ] || { log "no musl-* directory in $src"; exit 1; }
version=$(basename "$pristine")

# 2. One source tree per variant: a git repository, so that the patches apply with
#    git am exactly as a maintainer would apply them.
tree_for() {
	local v=$1 t=$out/tree-$1 want
	if [ "$v" = exitfree ]; then
		want=$(cat "$here"/patches/*.patch | sha1sum | cut -d' ' -f1)
	else
		want=none
	fi
	if [ "$(cat "$t/.patched" 2>/dev/null)" != "$version $want" ]; then
		log "preparing $v tree ($version)"
		rm -rf "$t"
		cp -a "$pristine" "$t"
		rm -rf "$t/debian"
		(cd "$t" && git init -q && git add -A && \
		 git -c user.name=build -c user.email=build@localhost commit -qm "$version (Debian source)")
		if [ "$v" = exitfree ]; then
			(cd "$t" && git -c user.name=build -c user.email=build@localhost am -q "$here"/patches/*.patch) ||
				{ log "the patches do not apply to $version"; exit 1; }
		fi
		echo "$version $want" > "$t/.patched"
	fi
	echo "$t"
}

for v in "${variants[@]}"; do
	t=$(tree_for "$v")
	stamp=$(cd "$t" && git rev-parse HEAD)
	for a in "${archs[@]}"; do
		dest=$out/$v-$a
		if [ "$(cat "$dest/.built" 2>/dev/null)" = "$stamp" ] && [ -x "$dest/bin/musl-gcc" ]; then
			continue
		fi
		case $a in
		x86_64) cc="gcc -m64" target=x86_64-linux-musl wrap="-m64" ;;
		i386) cc="gcc -m32" target=i386-linux-musl wrap="-m32 -Wl,-melf_i386" ;;
		esac
		log "building $v for $a"
		rm -rf "$dest" "$dest.obj"; mkdir -p "$dest.obj"
		(cd "$dest.obj" && CC="$cc" AR=ar RANLIB=ranlib "$t/configure" --target=$target --prefix="$dest" \
			--disable-shared --disable-wrapper >"$dest.obj/build.log" 2>&1 &&
		 make -j"$(nproc)" >>"$dest.obj/build.log" 2>&1 &&
		 make install >>"$dest.obj/build.log" 2>&1) ||
			{ tail -20 "$dest.obj/build.log" >&2; log "build failed: $dest.obj/build.log"; exit 1; }
		# The wrapper: the system gcc with musl's specs, as musl's own musl-gcc,
		# which cannot carry -m32. The specs replace gcc's link spec, and with
		# it the linker emulation that -m32 selects: give it back.
		sh "$t/tools/musl-gcc.specs.sh" "$dest/include" "$dest/lib" /nonexistent/ld-musl \
			> "$dest/lib/musl-gcc.specs"
		mkdir -p "$dest/bin"
		printf '#!/bin/sh\nexec "${REALGCC:-gcc}" %s "$@" -specs "%s/lib/musl-gcc.specs"\n' \
			"$wrap" "$dest" > "$dest/bin/musl-gcc"
		chmod +x "$dest/bin/musl-gcc"
		rm -rf "$dest.obj"
		echo "$stamp" > "$dest/.built"
	done
done
