// What an ordinary Go program expects from its image: a user database, a hosts file, time
// zones and CA certificates. It prints one line per need; any failure makes it exit 1.
package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/user"
	"sort"
	"strings"
	"time"
)

func main() {
	ok := true
	check := func(what string, result string, err error) {
		if err != nil {
			fmt.Printf("%s: FAIL\n", what)
			fmt.Fprintf(os.Stderr, "%s: %v\n", what, err)
			ok = false
			return
		}
		fmt.Printf("%s: %s\n", what, result)
	}

	u, err := user.Current()
	if err == nil {
		check("user", fmt.Sprintf("%s (uid %s)", u.Username, u.Uid), nil)
	} else {
		check("user", "", err)
	}

	addrs, err := net.LookupHost("localhost")
	sort.Strings(addrs)
	check("localhost", strings.Join(addrs, " "), err)

	loc, err := time.LoadLocation("Europe/Paris")
	if err == nil {
		check("zone", time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC).In(loc).Format("Europe/Paris 15:04 MST"), nil)
	} else {
		check("zone", "", err)
	}

	n, err := countCertificates("/etc/ssl/certs/ca-certificates.crt")
	check("ca bundle", fmt.Sprintf("%d certificates parse", n), err)

	if !ok {
		os.Exit(1)
	}
}

func countCertificates(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return n, err
		}
		n++
	}
	if n == 0 {
		return 0, fmt.Errorf("no certificate in %s", path)
	}
	return n, nil
}
