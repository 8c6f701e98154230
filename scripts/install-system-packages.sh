#!/usr/bin/env bash
# Installs the Debian packages the CRM, its demo and its test suite need.
# Idempotent: packages already present are not touched, so a warm machine pays nothing.
set -euo pipefail

packages=(
  ffmpeg        # recordings: pydub converts and measures audio through it
  espeak-ng     # speech tests: known words spoken into WAV files
  sox           # audio checks and resampling in tests
  postgresql    # the scale-out database; the suite starts its own server; its client
                # (postgresql-client-NN) brings pg_dump/pg_restore for `telecrm backup`
  redis-server  # pub/sub and job queues for scale-out; the suite starts its own server
  debootstrap   # builds the Debian sid root that holds the sandbox Asterisk 22
  procps        # pgrep/pkill used by the sandbox to find its processes
  util-linux    # mount, flock, runuser
  chromium      # browser tests of the web pages (driven by Playwright, headless)
  chromium-l10n # its Russian locale: date fields read dd.mm.yyyy as for our users
  fonts-dejavu-core  # readable Cyrillic in browser screenshots
  fonts-nanum   # the Korean test speech's transcripts on pages (the only installable Vosk model is Korean)
  wrk           # HTTP load generator of the call-tracking lease benchmark (bench/ct_lease.py)
  faketime      # libfaketime: tests run `telecrm` commands at a pinned date (tests/clock.py)
  nginx         # the reverse proxy of deploy/nginx/; tests/deploy/ runs its own, never the system's
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "These Debian packages are missing and installing them needs root: ${missing[*]}" >&2
  exit 1
fi
echo "Installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq

# Debian starts nginx on install with its default site on port 80: the install fails if
# that port is taken, and a machine that serves nothing would listen on it. The tests
# run nginx with their own configuration, so the system's stays down and off at boot
# (through policy-rc.d, which asks any policy already there about everything else).
policy=/usr/sbin/policy-rc.d
saved=/usr/sbin/policy-rc.d.before-telecrm
restore_policy() {
  rm -f "$policy"
  if [ -e "$saved" ]; then mv "$saved" "$policy"; fi
}
if [[ " ${missing[*]} " == *" nginx "* ]]; then
  if [ -e "$policy" ]; then mv "$policy" "$saved"; fi
  trap restore_policy EXIT
  cat >"$policy" <<POLICY
#!/bin/sh
[ "\$1" = nginx ] && exit 101
[ -x $saved ] && exec $saved "\$@"
exit 0
POLICY
  chmod 755 "$policy"
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [[ " ${missing[*]} " == *" nginx "* ]]; then
  restore_policy
  trap - EXIT
  systemctl disable nginx >/dev/null 2>&1 || update-rc.d nginx disable >/dev/null 2>&1 || true
fi
