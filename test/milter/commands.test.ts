import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Cmd, decodeCommand, decodeMacroPacket, MacroStore, MilterProtocolError } from '../../src/milter/index.js';
import { encodeCommand, type MtaCommand } from '../support/milter-codec.js';

function roundTrip(c: MtaCommand): unknown {
  const pkt = encodeCommand(c);
  assert.equal(pkt.readUInt32BE(0), pkt.length - 4);
  return decodeCommand(pkt[4]!, pkt.subarray(5));
}

/** What the library makes of a `D` packet: its stage and a map of bare names. */
function asDecoded(c: MtaCommand): unknown {
  if (c.type !== 'macro') return c;
  const macros = c.pairs.length === 0 ? undefined : c.pairs.flatMap((p) => [p.name.replace(/^\{(.*)\}$/, '$1'), p.value]);
  return { type: 'macroPacket', stage: c.stage, macros };
}

const all: MtaCommand[] = [
  { type: 'abort' },
  { type: 'body', chunk: Buffer.from('line\r\n\0binary') },
  { type: 'connect', hostname: '[192.0.2.1]', family: 'inet', port: 25000, address: '192.0.2.1' },
  { type: 'connect', hostname: 'v6.example', family: 'inet6', port: 1, address: '2001:db8::1' },
  { type: 'connect', hostname: 'localhost', family: 'local', port: 0, address: '/var/run/sock' },
  { type: 'connect', hostname: 'unknown', family: 'unknown' },
  { type: 'macro', stage: 0x43, pairs: [{ name: 'j', value: 'mx' }, { name: '{mail_addr}', value: '' }] },
  { type: 'macro', stage: 0x48, pairs: [] },
  { type: 'eob', data: Buffer.alloc(0) },
  { type: 'eob', data: Buffer.from('tail') },
  { type: 'helo', name: 'client.example' },
  { type: 'quitNc' },
  { type: 'header', name: 'X-Empty', value: '' },
  { type: 'header', name: 'Subject', value: 'folded\n\tline  ünïcode' },
  { type: 'mail', args: ['<>'] },
  { type: 'mail', args: ['<a@example.org>', 'SIZE=10', 'BODY=8BITMIME'] },
  { type: 'eoh' },
  { type: 'optneg', version: 6, actions: 0x1ff, protocol: 0x1fffff },
  { type: 'quit' },
  { type: 'rcpt', args: ['<b@example.net>', 'NOTIFY=NEVER'] },
  { type: 'data' },
  { type: 'unknown', line: 'FOOBAR arg' },
];

test('every MTA command survives encode -> decode', () => {
  for (const c of all) assert.deepEqual(roundTrip(c), asDecoded(c), c.type);
});

test('Postfix CONNECT bytes from the wire decode as documented', () => {
  const payload = Buffer.concat([Buffer.from('[127.0.0.1]\0'), Buffer.from([0x34, 0xd9, 0x70]), Buffer.from('127.0.0.1\0')]);
  assert.deepEqual(decodeCommand(0x43, payload), {
    type: 'connect',
    hostname: '[127.0.0.1]',
    family: 'inet',
    port: 0xd970,
    address: '127.0.0.1',
  });
});

test('invalid UTF-8 falls back to one char per byte', () => {
  const c = decodeCommand(0x48, Buffer.from([0x68, 0xe9, 0x00]));
  assert.deepEqual(c, { type: 'helo', name: 'h\u00e9' });
});

test('macro packets: odd name count, no pairs, empty payload', () => {
  assert.deepEqual(decodeCommand(0x44, Buffer.from('Mi\0Q1\0{lonely}\0')), {
    type: 'macroPacket',
    stage: 0x4d,
    macros: ['i', 'Q1', 'lonely', ''],
  });
  assert.deepEqual(decodeCommand(0x44, Buffer.from('H')), { type: 'macroPacket', stage: 0x48, macros: undefined });
  assert.deepEqual(decodeCommand(0x44, Buffer.alloc(0)), { type: 'macroPacket', stage: 0, macros: undefined });
  // The last name of a repeated pair wins, as in libmilter's lookup of the newest value.
  assert.deepEqual(decodeMacroPacket(Buffer.from('Mi\0Q1\0i\0Q2\0')).macros, ['i', 'Q1', 'i', 'Q2']);
  const later = new MacroStore();
  later.setPairs(Cmd.MAIL, decodeMacroPacket(Buffer.from('Mi\0Q1\0i\0Q2\0')).macros);
  assert.equal(later.get('i'), 'Q2', 'a later pair of the same name wins');
});

test('malformed commands are typed protocol errors', () => {
  const bad: [number, Buffer, string][] = [
    [0x5a, Buffer.alloc(0), 'UNKNOWN_COMMAND'],
    [0x4f, Buffer.alloc(11), 'SHORT_OPTNEG'],
    [0x48, Buffer.from('no-nul'), 'MISSING_NUL'],
    [0x4c, Buffer.from('Subject\0no-nul'), 'MISSING_NUL'],
    [0x4c, Buffer.from('Subject\0'), 'MISSING_NUL'],
    [0x4d, Buffer.alloc(0), 'MISSING_FIELD'],
    [0x52, Buffer.from('<a@b>'), 'MISSING_NUL'],
    [0x43, Buffer.from('host\0'), 'MISSING_FIELD'],
    [0x43, Buffer.from('host\0Z'), 'BAD_FAMILY'],
    [0x43, Buffer.from('host\x004\x00'), 'MISSING_FIELD'],
    [0x43, Buffer.from('host\x004\x00\x19'), 'MISSING_NUL'],
    [0x43, Buffer.from('host\x004\x00\x19not-an-ip\0'), 'BAD_ADDRESS'],
    [0x43, Buffer.from('host\x006\x00\x19192.0.2.1\0'), 'BAD_ADDRESS'],
    [0x44, Buffer.from('Cname\0value'), 'MISSING_NUL'],
    [0x55, Buffer.from('FOO'), 'MISSING_NUL'],
  ];
  for (const [cmd, p, code] of bad) {
    assert.throws(() => decodeCommand(cmd, p), (e: unknown) => e instanceof MilterProtocolError && e.code === code, `${String.fromCharCode(cmd)} ${p.toString('hex')}`);
  }
});
