import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Cmd, decodeMacroPacket, MacroStore } from '../../src/milter/index.js';
import { encodeCommand } from '../support/milter-codec.js';

const p = (o: Record<string, string>) => Object.entries(o).map(([name, value]) => ({ name, value }));

/** Stores a `D` packet as the session does: encoded as an MTA would, decoded, stored. */
function store(m: MacroStore, stage: number, pairs: { name: string; value: string }[]): boolean {
  const d = decodeMacroPacket(encodeCommand({ type: 'macro', stage, pairs }).subarray(5));
  return m.setPairs(d.stage, d.macros);
}

test('lookup works with bare or braced names whichever way the MTA sent them', () => {
  const m = new MacroStore();
  store(m, Cmd.CONNECT, p({ '{client_addr}': '192.0.2.1', j: 'mx', client_name: 'c.example', '{v}': 'Postfix' }));
  assert.equal(m.get('client_addr'), '192.0.2.1');
  assert.equal(m.get('{client_addr}'), '192.0.2.1');
  assert.equal(m.get('{client_name}'), 'c.example');
  assert.equal(m.get('{j}'), 'mx');
  assert.equal(m.get('v'), 'Postfix');
  assert.equal(m.get('missing'), undefined);
});

test('newest stage wins; a new D for a stage replaces the whole slot', () => {
  const m = new MacroStore();
  store(m, Cmd.MAIL, p({ i: 'old', '{mail_addr}': 'a@x' }));
  store(m, Cmd.RCPT, p({ i: 'Q1' }));
  assert.equal(m.get('i'), 'Q1');
  store(m, Cmd.RCPT, p({ '{rcpt_addr}': 'b@y' }));
  assert.equal(m.get('i'), 'old');
  assert.equal(m.get('rcpt_addr'), 'b@y');
  store(m, Cmd.RCPT, []);
  assert.equal(m.get('rcpt_addr'), undefined);
  assert.equal(m.get('mail_addr'), 'a@x');
});

test('commands clear the slots of later stages', () => {
  const m = new MacroStore();
  const fill = (): void => {
    store(m, Cmd.CONNECT, p({ c: '1' }));
    store(m, Cmd.HELO, p({ h: '1' }));
    store(m, Cmd.MAIL, p({ m: '1' }));
    store(m, Cmd.RCPT, p({ r: '1' }));
    store(m, Cmd.DATA, p({ t: '1' }));
    store(m, Cmd.EOH, p({ n: '1' }));
    store(m, Cmd.BODYEOB, p({ e: '1' }));
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
  store(m, Cmd.MAIL, p({ i: 'Q1' }));
  store(m, Cmd.BODYEOB, p({ e: '1' }));
  for (const cmd of [Cmd.ABORT, Cmd.DATA, Cmd.HEADER, Cmd.EOH, Cmd.BODY, Cmd.BODYEOB, Cmd.UNKNOWN]) m.onCommand(cmd);
  assert.equal(m.get('i'), 'Q1');
  assert.equal(m.get('e'), '1');
});

test('D L goes to the EOH slot, D B to the EOM slot, unknown stages are ignored', () => {
  const m = new MacroStore();
  store(m, Cmd.HEADER, p({ x: 'hdr' }));
  store(m, Cmd.EOH, p({ y: 'eoh' }));
  assert.equal(m.get('x'), undefined, 'D N replaced the EOH slot that D L filled');
  store(m, Cmd.BODY, p({ z: 'body' }));
  assert.equal(m.get('z'), 'body');
  store(m, Cmd.BODYEOB, p({ i: 'Q' }));
  assert.equal(m.get('z'), undefined);
  assert.equal(store(m, 0x5a, p({ bogus: '1' })), false);
  assert.equal(m.get('bogus'), undefined);
});

test('UNKNOWN-stage macros are visible, and are dropped at the next stage change', () => {
  const m = new MacroStore();
  store(m, Cmd.HELO, p({ k: 'helo' }));
  store(m, Cmd.UNKNOWN, p({ k: 'unknown' }));
  assert.equal(m.get('k'), 'unknown');
  m.onCommand(Cmd.MAIL);
  assert.equal(m.get('k'), 'helo');
});

test('all() merges stages with the newest winning', () => {
  const m = new MacroStore();
  store(m, Cmd.CONNECT, p({ j: 'mx', i: 'a' }));
  store(m, Cmd.DATA, p({ i: 'b' }));
  assert.deepEqual(m.all(), { j: 'mx', i: 'b' });
  m.clear();
  assert.deepEqual(m.all(), {});
});
