// Scenario 2 of the static-build matrix: cgo code that needs no NSS; the standard library on its cgo resolver.
package main

/*
#include <stdlib.h>

// Plain computation: no libc call that could reach NSS or dlopen.
static unsigned c_fnv1a(const char *s) {
	unsigned h = 2166136261u;
	for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}
*/
import "C"

import (
	"fmt"
	"net"
	"os"
	"os/user"
	"sort"
	"strings"
	"unsafe"
)

func main() {
	ok := true
	if u, err := user.Current(); err != nil {
		fmt.Println("user.Current:", err)
		ok = false
	} else {
		fmt.Printf("current user: %s (uid %s)\n", u.Username, u.Uid)
	}
	if u, err := user.Lookup("nonroot"); err != nil {
		fmt.Println("user.Lookup(nonroot):", err)
		ok = false
	} else {
		fmt.Printf("lookup nonroot: uid %s\n", u.Uid)
	}
	if addrs, err := net.LookupHost("localhost"); err != nil {
		fmt.Println("net.LookupHost(localhost):", err)
		ok = false
	} else {
		sort.Strings(addrs)
		fmt.Printf("localhost: %s\n", strings.Join(dedup(addrs), " "))
	}
	if !cPart() {
		ok = false
	}
	if !ok {
		os.Exit(1)
	}
}

func dedup(sorted []string) []string {
	out := sorted[:0]
	for i, s := range sorted {
		if i == 0 || s != sorted[i-1] {
			out = append(out, s)
		}
	}
	return out
}

func cPart() bool {
	s := C.CString("staticpack")
	defer C.free(unsafe.Pointer(s))
	h := uint32(C.c_fnv1a(s))
	fmt.Printf("c fnv1a(staticpack): %08x\n", h)
	return h != 0
}
