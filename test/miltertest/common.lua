-- Helpers shared by the miltertest scripts. Loaded with dofile(MT_DIR .. "/common.lua");
-- the runner passes -D socket=<libmilter socket spec> and -D MT_DIR=<this directory>.
-- miltertest (Debian 1.6.0) prints nothing when a script raises an error, so run() echoes
-- the failure first: the test runner shows stdout when the exit status is non-zero.

-- Reply names for messages: mt.getreply() returns the reply byte as a number.
local function reply_name(r)
  if r == nil then return "nil" end
  if r == 0 then return "(none)" end
  return string.format("'%s'", string.char(r))
end

-- Fails unless a mt.* call returned nil (success).
function ok(err, what)
  if err ~= nil then error(what .. " failed: " .. tostring(err), 2) end
end

function expect_reply(conn, want, what)
  local got = mt.getreply(conn)
  if got ~= want then
    error(string.format("%s: expected reply %s, got %s", what, reply_name(want), reply_name(got)), 2)
  end
end

function expect(cond, what)
  if not cond then error("expectation failed: " .. what, 2) end
end

-- Negotiates like Postfix 3.x with milter_protocol = 6: version 6, all actions, all steps.
function connect_like_postfix()
  local conn = mt.connect(socket, 10, 0.2)
  if conn == nil then error("mt.connect(" .. tostring(socket) .. ") failed") end
  ok(mt.negotiate(conn, 6, 0x1FF, 0x1FFFFF), "mt.negotiate")
  return conn
end

-- Sends the SMTP-session start (connect with {client_addr} macro, HELO) and checks both replies.
function start_session(conn, host, ip)
  ok(mt.macro(conn, SMFIC_CONNECT, "j", "mx.example.test", "{client_addr}", ip), "mt.macro(connect)")
  ok(mt.conninfo(conn, host, ip), "mt.conninfo")
  expect_reply(conn, SMFIR_CONTINUE, "connect")
  ok(mt.helo(conn, "client.example.test"), "mt.helo")
  expect_reply(conn, SMFIR_CONTINUE, "helo")
end

function run(main)
  local success, err = pcall(main)
  if not success then
    mt.echo("FAIL: " .. tostring(err))
    error(err)
  end
  mt.echo("PASS")
end
