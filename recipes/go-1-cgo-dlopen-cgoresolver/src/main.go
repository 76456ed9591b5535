// Scenario 1 of the static-build matrix: cgo code that calls getpwnam/getaddrinfo (NSS, dlopen under glibc); the standard library on its cgo resolver.
package main

/*
#include <netdb.h>
#include <pwd.h>
#include <stddef.h>
#include <stdlib.h>

// Reaches glibc's NSS: under static glibc these load libnss_*.so with dlopen at run time.
static long c_uid_of(const char *name) {
	struct passwd *pw = getpwnam(name);
	return pw ? (long)pw->pw_uid : -1;
}

static int c_resolves(const char *host) {
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(host, NULL, NULL, &res);
	if (rc == 0) freeaddrinfo(res);
	return rc == 0;
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
	name := C.CString("nonroot")
	host := C.CString("localhost")
	defer C.free(unsafe.Pointer(name))
	defer C.free(unsafe.Pointer(host))
	uid := C.c_uid_of(name)
	fmt.Printf("c getpwnam(nonroot): uid %d\n", uid)
	ok := C.c_resolves(host) != 0
	fmt.Printf("c getaddrinfo(localhost): %v\n", ok)
	return uid == 65532 && ok
}
