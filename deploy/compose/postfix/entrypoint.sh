#!/bin/sh
# Configures Postfix from the environment (see .env.example), then runs it in the foreground.
set -eu
postconf -e \
  "myhostname=${POSTFIX_MYHOSTNAME:-mail.example}" \
  "myorigin=\$myhostname" \
  "mydestination=localhost, \$myhostname" \
  "mynetworks=${POSTFIX_MYNETWORKS:-127.0.0.0/8 [::1]/128}" \
  "relayhost=${POSTFIX_RELAYHOST:-}" \
  "maillog_file=/dev/stdout" \
  "smtpd_milters=unix:/sos-milter/sos-milter" \
  "milter_default_action=${POSTFIX_MILTER_DEFAULT_ACTION:-tempfail}" \
  "milter_protocol=6" \
  "milter_connect_timeout=10s" \
  "milter_content_timeout=60s"
# Rewrite mode: bounces to SRS addresses are mapped back to the original sender by the milter's
# srsdecode socketmap; forged or expired ones are not found and rejected as unknown users.
if [ -n "${POSTFIX_SRS_SOCKETMAP:-}" ]; then
  postconf -e \
    "recipient_canonical_maps=socketmap:${POSTFIX_SRS_SOCKETMAP}:srsdecode" \
    "recipient_canonical_classes=envelope_recipient"
fi
# The submission port: authenticated users are the milter's main audience.
postconf -M submission/inet="submission inet n - y - - smtpd"
postconf -P "submission/inet/syslog_name=postfix/submission"
# maillog_file needs the postlog service (Postfix >= 3.4).
postconf -M postlog/unix-dgram="postlog unix-dgram n - n - 1 postlogd"
newaliases
# smtpd is chrooted to /var/spool/postfix; the milter's socket volume is mounted at
# /var/spool/postfix/sos-milter, so smtpd reaches it as /sos-milter/sos-milter.
# What Debian's postfix service runs before it starts (ExecStartPre of postfix@.service): copy
# resolv.conf, hosts, services, nsswitch.conf and the NSS libraries into the chroot. Without it
# chrooted processes resolve no names: cleanup could not reach the srsdecode socketmap at
# inet:sos-milter:PORT, and smtpd would not know Docker's DNS.
"${POSTFIX_CONFIGURE_INSTANCE:-/usr/lib/postfix/configure-instance.sh}" -
exec postfix start-fg
