#!/usr/bin/env bash
# Runs every test: installs what the tests need (Debian packages when run as root and
# missing, npm packages), builds, lints, then runs the unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real peers used by the integration tests: Postfix (MTA), miltertest, Knot (DNS), slapd (LDAP).
debs=(postfix miltertest knot knot-dnsutils slapd ldap-utils openssl)
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
node scripts/run-tests.mjs
