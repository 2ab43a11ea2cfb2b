import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Cmd, MacroStore } from '../../src/milter/index.js';

const p = (o: Record<string, string>) => Object.entries(o).map(([name, value]) => ({ name, value }));

test('lookup works with bare or braced names whichever way the MTA sent them', () => {
  const m = new MacroStore();
  m.set(Cmd.CONNECT, p({ '{client_addr}': '192.0.2.1', j: 'mx', client_name: 'c.example', '{v}': 'Postfix' }));
  assert.equal(m.get('client_addr'), '192.0.2.1');
  assert.equal(m.get('{client_addr}'), '192.0.2.1');
  assert.equal(m.get('{client_name}'), 'c.example');
  assert.equal(m.get('{j}'), 'mx');
  assert.equal(m.get('v'), 'Postfix');
  assert.equal(m.get('missing'), undefined);
});

test('newest stage wins; a new D for a stage replaces the whole slot', () => {
  const m = new MacroStore();
  m.set(Cmd.MAIL, p({ i: 'old', '{mail_addr}': 'a@x' }));
  m.set(Cmd.RCPT, p({ i: 'Q1' }));
  assert.equal(m.get('i'), 'Q1');
  m.set(Cmd.RCPT, p({ '{rcpt_addr}': 'b@y' }));
  assert.equal(m.get('i'), 'old');
  assert.equal(m.get('rcpt_addr'), 'b@y');
  m.set(Cmd.RCPT, []);
  assert.equal(m.get('rcpt_addr'), undefined);
  assert.equal(m.get('mail_addr'), 'a@x');
});

test('commands clear the slots of later stages', () => {
  const m = new MacroStore();
  const fill = (): void => {
    m.set(Cmd.CONNECT, p({ c: '1' }));
    m.set(Cmd.HELO, p({ h: '1' }));
    m.set(Cmd.MAIL, p({ m: '1' }));
    m.set(Cmd.RCPT, p({ r: '1' }));
    m.set(Cmd.DATA, p({ t: '1' }));
    m.set(Cmd.EOH, p({ n: '1' }));
    m.set(Cmd.BODYEOB, p({ e: '1' }));
  };
  const present = (): string => ['c', 'h', 'm', 'r', 't', 'n', 'e'].filter((k) => m.get(k) !== undefined).join('');
  fill();
  m.onCommand(Cmd.RCPT);
  assert.equal(present(), 'chmr');
  fill();
  m.onCommand(Cmd.MAIL);
  assert.equal(present(), 'chm');
  fill();
  m.onCommand(Cmd.HELO);
  assert.equal(present(), 'ch');
  fill();
  m.onCommand(Cmd.CONNECT);
  assert.equal(present(), 'c');
  for (const cmd of [Cmd.OPTNEG, Cmd.QUIT, Cmd.QUIT_NC]) {
    fill();
    m.onCommand(cmd);
    assert.equal(present(), '', String.fromCharCode(cmd));
  }
});

test('ABORT and other commands clear nothing', () => {
  const m = new MacroStore();
  m.set(Cmd.MAIL, p({ i: 'Q1' }));
  m.set(Cmd.BODYEOB, p({ e: '1' }));
  for (const cmd of [Cmd.ABORT, Cmd.DATA, Cmd.HEADER, Cmd.EOH, Cmd.BODY, Cmd.BODYEOB, Cmd.UNKNOWN]) m.onCommand(cmd);
  assert.equal(m.get('i'), 'Q1');
  assert.equal(m.get('e'), '1');
});

test('D L goes to the EOH slot, D B to the EOM slot, unknown stages are ignored', () => {
  const m = new MacroStore();
  m.set(Cmd.HEADER, p({ x: 'hdr' }));
  m.set(Cmd.EOH, p({ y: 'eoh' }));
  assert.equal(m.get('x'), undefined, 'D N replaced the EOH slot that D L filled');
  m.set(Cmd.BODY, p({ z: 'body' }));
  assert.equal(m.get('z'), 'body');
  m.set(Cmd.BODYEOB, p({ i: 'Q' }));
  assert.equal(m.get('z'), undefined);
  assert.equal(m.set(0x5a, p({ bogus: '1' })), false);
  assert.equal(m.get('bogus'), undefined);
});

test('UNKNOWN-stage macros are visible, and are dropped at the next stage change', () => {
  const m = new MacroStore();
  m.set(Cmd.HELO, p({ k: 'helo' }));
  m.set(Cmd.UNKNOWN, p({ k: 'unknown' }));
  assert.equal(m.get('k'), 'unknown');
  m.onCommand(Cmd.MAIL);
  assert.equal(m.get('k'), 'helo');
});

test('all() merges stages with the newest winning', () => {
  const m = new MacroStore();
  m.set(Cmd.CONNECT, p({ j: 'mx', i: 'a' }));
  m.set(Cmd.DATA, p({ i: 'b' }));
  assert.deepEqual(m.all(), { j: 'mx', i: 'b' });
  m.clear();
  assert.deepEqual(m.all(), {});
});

test('a D packet decoded straight into the store gives what decodeCommand + set() give', async () => {
  const { decodeMacroPacket } = await import('../../src/milter/macros.js');
  const { decodeCommand, encodeCommand } = await import('../../src/milter/commands.js');
  const packets = [
    encodeCommand({ type: 'macro', stage: Cmd.MAIL, pairs: [{ name: 'i', value: 'Q1' }, { name: '{mail_addr}', value: 'a@b.example' }, { name: 'i', value: 'Q2' }] }),
    encodeCommand({ type: 'macro', stage: Cmd.RCPT, pairs: [] }),
    encodeCommand({ type: 'macro', stage: 0x7a, pairs: [{ name: 'j', value: 'x' }] }),
    Buffer.from([0, 0, 0, 1, 0x44]),
    Buffer.from('\0\0\0\x08DMi\0Q3\0j', 'latin1').subarray(0, 12),
    Buffer.from('\0\0\0\x07DMi\0Q3\0', 'latin1'),
    Buffer.from('\0\0\0\x0aDM{j}\0\xe9\0k\0', 'latin1'),
  ];
  for (const packet of packets) {
    const payload = packet.subarray(5);
    let expected: unknown;
    let got: unknown;
    const viaCommand = new MacroStore();
    const direct = new MacroStore();
    try {
      const c = decodeCommand(Cmd.MACRO, payload);
      assert.ok(c.type === 'macro');
      expected = [viaCommand.set(c.stage, c.pairs), viaCommand.all(), viaCommand.get('i')];
    } catch (e) {
      expected = String(e);
    }
    try {
      const p = decodeMacroPacket(payload);
      got = [direct.setMap(p.stage, p.macros), direct.all(), direct.get('i')];
    } catch (e) {
      got = String(e);
    }
    assert.deepEqual(got, expected, packet.toString('latin1'));
  }
});
