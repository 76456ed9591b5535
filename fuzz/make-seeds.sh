#!/usr/bin/env bash
# Rebuilds the committed seed corpus fuzz/seeds/analyze: small real binaries (glibc and musl,
# static, static-pie, dynamic, shared library, object file, executable stack with RPATH) and
# hand-made headers (32/64-bit, little/big-endian, a Go build info blob behind a bare header).
# Needs gcc, musl-gcc and go. Seeds stay small: libFuzzer mutates faster on small inputs.
set -euo pipefail
out="$(cd "$(dirname "$0")" && pwd)/seeds/analyze"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir -p "$out"
printf '#include <stdio.h>\nint main(void){puts("hi");return 0;}\n' >hello.c
printf '#include <stdio.h>\n#include <pwd.h>\nint main(void){struct passwd*p=getpwnam("root");printf("%%d\\n",p?(int)p->pw_uid:-1);return 0;}\n' >pw.c
gcc -Os hello.c -o "$out/gcc-dynamic"
gcc -Os -s -fstack-protector-all -D_FORTIFY_SOURCE=2 -Wl,-z,relro,-z,now pw.c -o "$out/gcc-dynamic-hardened-stripped"
gcc -Os -s -Wl,-z,execstack -Wl,--disable-new-dtags,-rpath,/opt/lib hello.c -o "$out/gcc-execstack-rpath"
musl-gcc -static -Os hello.c -o "$out/musl-static"
musl-gcc -static -Os -s hello.c -o "$out/musl-static-stripped"
musl-gcc -static-pie -Os -s hello.c -o "$out/musl-dynamic-pie"
echo 'int hi(void){return 1;}' | gcc -shared -fPIC -Wl,-soname,libhi.so.1 -s -x c - -o "$out/shared-lib"
gcc -c -Os hello.c -o "$out/object.o"

# Header-only files: class, data, type, machine (e_ehsize set, no tables).
header() { # name class data etype_bytes machine_bytes size
  local name=$1 class=$2 data=$3 etype=$4 machine=$5 size=$6
  { printf '\x7fELF\x'"$class"'\x'"$data"'\x01'; head -c 9 /dev/zero; printf "$etype$machine"; } >"$out/$name"
  truncate -s "$size" "$out/$name"
}
header elf32-le-386 01 01 '\x02\x00' '\x03\x00' 52
header elf32-be-mips 01 02 '\x00\x02' '\x00\x08' 52
header elf64-be-s390x 02 02 '\x00\x02' '\x00\x16' 64
header elf64-le-aarch64-dyn 02 01 '\x03\x00' '\xb7\x00' 64

# A Go build info blob (inline format, Go >= 1.18) behind a bare ELF header: the analyzer
# finds it by its magic at a 16-byte boundary.
if command -v go >/dev/null; then
  mkdir gomod && cd gomod
  printf 'module example.com/seed\n\ngo 1.19\n' >go.mod
  printf 'package main\nfunc main(){}\n' >main.go
  CGO_ENABLED=0 GOFLAGS=-mod=mod GOPROXY=off GOCACHE="$work/gocache" go build -trimpath -o seed .
  at=$(LC_ALL=C grep -obUaP '\xff Go buildinf:' seed | head -1 | cut -d: -f1)
  cp "$out/elf64-le-aarch64-dyn" "$out/go-buildinfo"
  dd if=seed bs=1 skip="$at" count=1024 status=none >>"$out/go-buildinfo"
fi
ls -l "$out"
