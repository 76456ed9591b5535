// Scenario 6 of the static-build matrix: no cgo code, cgo off: pure Go through and through.
package main

import (
	"fmt"
	"net"
	"os"
	"os/user"
	"sort"
	"strings"
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

func cPart() bool { return true }
