-- Option negotiation: what the library asks for with a Postfix-like offer, with miltertest's
-- own default offer, and with an old (version 2) MTA that offers no macro lists.
dofile(MT_DIR .. "/common.lua")

run(function()
  local conn = connect_like_postfix()
  expect(mt.test_action(conn, SMFIF_ADDHDRS), "ADDHDRS requested (the app adds headers)")
  expect(mt.test_action(conn, SMFIF_SETSYMLIST), "SETSYMLIST requested (the app declares macros)")
  expect(not mt.test_action(conn, SMFIF_CHGBODY), "CHGBODY not requested (not declared)")
  expect(not mt.test_action(conn, SMFIF_CHGFROM), "CHGFROM not requested (not declared)")
  -- The app answers at every stage it may refuse, so none of these may be skipped or unanswered.
  expect(not mt.test_option(conn, SMFIP_NOCONNECT), "CONNECT not skipped")
  expect(not mt.test_option(conn, SMFIP_NOMAIL), "MAIL not skipped")
  expect(not mt.test_option(conn, SMFIP_NORCPT), "RCPT not skipped")
  expect(not mt.test_option(conn, SMFIP_NR_MAIL), "MAIL answered")
  expect(not mt.test_option(conn, SMFIP_NR_RCPT), "RCPT answered")
  start_session(conn, "client.example.test", "192.0.2.1")
  ok(mt.disconnect(conn), "mt.disconnect")

  -- miltertest negotiates implicitly with libmilter's default offer.
  local conn2 = mt.connect(socket, 10, 0.2)
  if conn2 == nil then error("mt.connect failed") end
  ok(mt.conninfo(conn2, "localhost", "127.0.0.1"), "mt.conninfo (implicit negotiation)")
  expect_reply(conn2, SMFIR_CONTINUE, "connect after default negotiation")
  ok(mt.mailfrom(conn2, "<sender@example.org>"), "mt.mailfrom")
  expect_reply(conn2, SMFIR_CONTINUE, "mail")
  ok(mt.eom(conn2), "mt.eom")
  expect(mt.eom_check(conn2, MT_HDRADD, "X-Test-Milter", "msg=1"), "header added after default negotiation")
  ok(mt.disconnect(conn2), "mt.disconnect")

  -- A version 2 MTA (actions 0x0F, steps 0x7F) offers no SETSYMLIST: it must not be requested,
  -- and the session must still work.
  local conn3 = mt.connect(socket, 10, 0.2)
  if conn3 == nil then error("mt.connect failed") end
  ok(mt.negotiate(conn3, 2, 0x0F, 0x7F), "mt.negotiate(v2)")
  expect(not mt.test_action(conn3, SMFIF_SETSYMLIST), "SETSYMLIST not requested from a v2 MTA")
  expect(mt.test_action(conn3, SMFIF_ADDHDRS), "ADDHDRS still requested from a v2 MTA")
  ok(mt.conninfo(conn3, "old.example.test", "192.0.2.2"), "mt.conninfo(v2)")
  expect_reply(conn3, SMFIR_CONTINUE, "connect (v2)")
  ok(mt.mailfrom(conn3, "<reject-mail@example.org>"), "mt.mailfrom(v2)")
  expect_reply(conn3, SMFIR_REJECT, "mail (v2)")
  ok(mt.disconnect(conn3), "mt.disconnect")
end)
