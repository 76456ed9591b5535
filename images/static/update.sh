#!/usr/bin/env bash
# Refreshes the vendored inputs of the `static` base from this machine's Debian packages and
# prints the pins to put in base.toml. Run it deliberately (a new tzdata or ca-certificates
# release changes the base layer's digest and every golden digest that uses it).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
files="$here/files"

# Copies one packaged file from the machine into files/ and prints its pin.
vendor_file() {
  mkdir -p "$(dirname "$files$1")"
  cp "$1" "$files$1"
  echo "  $1 digest = \"sha256:$(sha256sum "$files$1" | cut -d' ' -f1)\""
}

echo "ca-certificates $(dpkg-query -W -f='${Version}' ca-certificates)"
vendor_file /etc/ssl/certs/ca-certificates.crt

echo "netbase $(dpkg-query -W -f='${Version}' netbase)"
vendor_file /etc/services
vendor_file /etc/protocols

echo "tzdata $(dpkg-query -W -f='${Version}' tzdata)"
rm -rf "$files/usr/share/zoneinfo"
mkdir -p "$files/usr/share"
(cd /usr/share && tar --exclude=zoneinfo/posix --exclude=zoneinfo/right --exclude=zoneinfo/localtime -cf - zoneinfo) |
  tar -xf - -C "$files/usr/share"
# The pin: sha256 over sorted "f PATH SHA256" and "l PATH TARGET" lines (see image::base::tree_digest).
cd "$files/usr/share/zoneinfo"
{
  find . -type f -printf '%P\n' | while read -r f; do echo "f $f $(sha256sum "$f" | cut -d' ' -f1)"; done
  find . -type l -printf 'l %P %l\n'
} | LC_ALL=C sort | sha256sum | sed 's/^\([0-9a-f]*\).*/  digest = "sha256:\1"/'
