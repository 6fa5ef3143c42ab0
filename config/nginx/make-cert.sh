#!/bin/sh
# A self-signed TLS certificate for local use: make-cert.sh DIR [NAME...]
# Writes DIR/cert.pem and DIR/key.pem (ECDSA P-256, 825 days), valid for localhost, 127.0.0.1 and each NAME
# (a host name or an IPv4 address). Clients must skip verification (wsk -i, openwhisk npm `ignore_certs: true`)
# or trust DIR/cert.pem. For real certificates point render.py's --cert/--key at them instead.
set -eu
dir=${1:?usage: make-cert.sh DIR [NAME...]}
shift
cn=${1:-localhost}
san="DNS:localhost,IP:127.0.0.1"
for name in "$@"; do
    case $name in
        *[!0-9.]*) san="$san,DNS:$name" ;;
        *) san="$san,IP:$name" ;;
    esac
done
mkdir -p "$dir"
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 -sha256 \
    -subj "/CN=$cn" -addext "subjectAltName=$san" \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
chmod 644 "$dir/cert.pem"
echo "certificate $dir/cert.pem, key $dir/key.pem (CN=$cn, $san)"
