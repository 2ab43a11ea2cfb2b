-- Macros sent at several stages reach the application: it reports {client_addr} (connect),
-- {rcpt_host} (each RCPT) and i (queue id) in the headers it adds at end of message.
dofile(MT_DIR .. "/common.lua")

run(function()
  local conn = connect_like_postfix()
  start_session(conn, "client.example.test", "192.0.2.30")

  -- Postfix sends no i at MAIL (the queue file does not exist yet) but does from DATA on.
  ok(mt.mailfrom(conn, "<alice@example.org>"), "mt.mailfrom")
  expect_reply(conn, SMFIR_CONTINUE, "mail")
  ok(mt.macro(conn, SMFIC_RCPT, "{rcpt_addr}", "bob@example.net", "{rcpt_host}", "example.net", "{rcpt_mailer}", "smtp"), "mt.macro(rcpt)")
  ok(mt.rcptto(conn, "<bob@example.net>"), "mt.rcptto")
  expect_reply(conn, SMFIR_CONTINUE, "rcpt 1")
  ok(mt.macro(conn, SMFIC_RCPT, "i", "4ABCDE12F", "{rcpt_addr}", "carol@example.com", "{rcpt_host}", "example.com", "{rcpt_mailer}", "smtp"), "mt.macro(rcpt)")
  ok(mt.rcptto(conn, "<carol@example.com>"), "mt.rcptto")
  expect_reply(conn, SMFIR_CONTINUE, "rcpt 2")
  ok(mt.header(conn, "Subject", "macros"), "mt.header")
  expect_reply(conn, SMFIR_CONTINUE, "header")
  ok(mt.eom(conn), "mt.eom")
  local r = mt.getreply(conn)
  expect(r == SMFIR_CONTINUE or r == SMFIR_ACCEPT, "eom accepted")
  expect(mt.eom_check(conn, MT_HDRADD, "X-Test-Client", "192.0.2.30"), "connect macro {client_addr} seen at EOM")
  expect(mt.eom_check(conn, MT_HDRADD, "X-Test-Rcpt-Host", "example.net,example.com"), "per-recipient {rcpt_host} seen")
  expect(mt.eom_check(conn, MT_HDRADD, "X-Test-Queue-Id", "4ABCDE12F"), "i seen at EOM")
  ok(mt.abort(conn), "mt.abort")

  -- Next transaction without any RCPT macros: the previous recipient's values are gone.
  ok(mt.mailfrom(conn, "<alice@example.org>"), "mt.mailfrom")
  expect_reply(conn, SMFIR_CONTINUE, "mail 2")
  ok(mt.rcptto(conn, "<dave@example.org>"), "mt.rcptto")
  expect_reply(conn, SMFIR_CONTINUE, "rcpt 3")
  ok(mt.eom(conn), "mt.eom")
  expect(mt.eom_check(conn, MT_HDRADD, "X-Test-Rcpt-Host", "(none)"), "no stale {rcpt_host}")
  expect(mt.eom_check(conn, MT_HDRADD, "X-Test-Client", "192.0.2.30"), "connect macros kept for the whole connection")
  ok(mt.disconnect(conn), "mt.disconnect")
end)
