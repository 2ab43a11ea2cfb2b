-- Reject, tempfail, custom reply codes and discard at MAIL, RCPT and end of message
-- (verdicts chosen by trigger words in the test application).
dofile(MT_DIR .. "/common.lua")

local function mail(conn, sender, want, what)
  ok(mt.mailfrom(conn, sender), "mt.mailfrom " .. sender)
  expect_reply(conn, want, what)
end

run(function()
  local conn = connect_like_postfix()
  start_session(conn, "client.example.test", "192.0.2.20")

  -- MAIL stage; the MTA aborts the transaction after each refusal, as Postfix does.
  mail(conn, "<reject-mail@example.org>", SMFIR_REJECT, "mail reject")
  ok(mt.abort(conn), "mt.abort")
  mail(conn, "<tempfail-mail@example.org>", SMFIR_TEMPFAIL, "mail tempfail")
  ok(mt.abort(conn), "mt.abort")
  mail(conn, "<reply-mail@example.org>", SMFIR_REPLYCODE, "mail reply code")
  ok(mt.abort(conn), "mt.abort")

  -- RCPT stage: only that recipient is refused, the transaction continues.
  mail(conn, "<ok@example.org>", SMFIR_CONTINUE, "mail ok")
  ok(mt.rcptto(conn, "<reject-rcpt@example.net>"), "mt.rcptto")
  expect_reply(conn, SMFIR_REJECT, "rcpt reject")
  ok(mt.rcptto(conn, "<tempfail-rcpt@example.net>"), "mt.rcptto")
  expect_reply(conn, SMFIR_TEMPFAIL, "rcpt tempfail")
  ok(mt.rcptto(conn, "<reply-rcpt@example.net>"), "mt.rcptto")
  expect_reply(conn, SMFIR_REPLYCODE, "rcpt reply code")
  ok(mt.rcptto(conn, "<fine@example.net>"), "mt.rcptto")
  expect_reply(conn, SMFIR_CONTINUE, "rcpt ok")

  -- End of message, chosen by the Subject.
  ok(mt.header(conn, "Subject", "please reject-eom"), "mt.header")
  expect_reply(conn, SMFIR_CONTINUE, "header")
  ok(mt.eom(conn), "mt.eom")
  expect_reply(conn, SMFIR_REJECT, "eom reject")
  expect(not mt.eom_check(conn, MT_HDRADD), "no header added to a rejected message")
  ok(mt.abort(conn), "mt.abort")

  local function eom_with_subject(subject, want, what)
    mail(conn, "<ok@example.org>", SMFIR_CONTINUE, what .. ": mail")
    ok(mt.rcptto(conn, "<fine@example.net>"), "mt.rcptto")
    expect_reply(conn, SMFIR_CONTINUE, what .. ": rcpt")
    ok(mt.header(conn, "Subject", subject), "mt.header")
    expect_reply(conn, SMFIR_CONTINUE, what .. ": header")
    ok(mt.eom(conn), "mt.eom")
    expect_reply(conn, want, what)
  end

  eom_with_subject("tempfail-eom", SMFIR_TEMPFAIL, "eom tempfail")
  ok(mt.abort(conn), "mt.abort")
  eom_with_subject("reply-eom", SMFIR_REPLYCODE, "eom reply code")
  -- MT_SMTPREPLY compares the whole y text; the library must double "%" on the wire.
  expect(mt.eom_check(conn, MT_SMTPREPLY, "554", "5.7.0", "Message refused by test milter (100%% sure)"),
    "eom reply text is exactly 554 5.7.0 Message refused by test milter (100%% sure)")
  ok(mt.abort(conn), "mt.abort")
  eom_with_subject("reply-multi-eom", SMFIR_REPLYCODE, "eom multi-line reply code")
  -- A multi-line text starts "554-5.7.0 ...": only the whole first line could be compared, and
  -- MT_SMTPREPLY always inserts "code SP"; the Postfix test checks the lines as the client sees them.
  expect(not mt.eom_check(conn, MT_SMTPREPLY, "554", "5.7.0", "Message refused by test milter"), "multi-line text is not a single line")
  ok(mt.abort(conn), "mt.abort")
  eom_with_subject("discard-eom", SMFIR_DISCARD, "eom discard")
  ok(mt.abort(conn), "mt.abort")
  ok(mt.disconnect(conn), "mt.disconnect")
end)
