-- Several messages on one milter connection, each judged on its own.
dofile(MT_DIR .. "/common.lua")

local function message(conn, sender, subject)
  ok(mt.mailfrom(conn, sender), "mt.mailfrom")
  local r = mt.getreply(conn)
  if r ~= SMFIR_CONTINUE then return r end
  ok(mt.rcptto(conn, "<rcpt@example.net>"), "mt.rcptto")
  expect_reply(conn, SMFIR_CONTINUE, "rcpt")
  ok(mt.header(conn, "Subject", subject), "mt.header")
  expect_reply(conn, SMFIR_CONTINUE, "header")
  ok(mt.bodystring(conn, "body of " .. subject .. "\r\n"), "mt.bodystring")
  expect_reply(conn, SMFIR_CONTINUE, "body")
  ok(mt.eom(conn), "mt.eom")
  return mt.getreply(conn)
end

local function accepted(r) return r == SMFIR_CONTINUE or r == SMFIR_ACCEPT end

run(function()
  local conn = connect_like_postfix()
  start_session(conn, "client.example.test", "192.0.2.40")

  expect(accepted(message(conn, "<a@example.org>", "first")), "message 1 accepted")
  expect(mt.eom_check(conn, MT_HDRADD, "X-Test-Milter", "msg=1"), "message 1 header")
  -- Postfix sends ABORT after every end of message, even an accepted one.
  ok(mt.abort(conn), "mt.abort")

  expect(message(conn, "<b@example.org>", "second reject-eom") == SMFIR_REJECT, "message 2 rejected")
  expect(not mt.eom_check(conn, MT_HDRADD), "message 2 gets no header")
  ok(mt.abort(conn), "mt.abort")

  expect(message(conn, "<reject-mail@example.org>", "third") == SMFIR_REJECT, "message 3 rejected at MAIL")
  ok(mt.abort(conn), "mt.abort")

  expect(accepted(message(conn, "<d@example.org>", "fourth")), "message 4 accepted after refusals")
  expect(mt.eom_check(conn, MT_HDRADD, "X-Test-Milter", "msg=4"), "message 4 header")
  ok(mt.abort(conn), "mt.abort")
  -- Repeated ABORTs with no message in progress are harmless.
  ok(mt.abort(conn), "mt.abort (repeated)")

  expect(accepted(message(conn, "<e@example.org>", "fifth")), "message 5 accepted")
  expect(mt.eom_check(conn, MT_HDRADD, "X-Test-Milter", "msg=5"), "message 5 header")
  ok(mt.disconnect(conn), "mt.disconnect")
end)
