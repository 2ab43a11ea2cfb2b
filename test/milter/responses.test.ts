import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeResponse } from '../support/milter-codec.js';
import {
  encodeReplaceBody,
  encodeResponse,
  MilterEncodeError,
  MilterProtocolError,
  ReplyCodeError,
  type MilterResponse,
} from '../../src/milter/index.js';

function roundTrip(r: MilterResponse): MilterResponse {
  const pkt = encodeResponse(r);
  assert.equal(pkt.readUInt32BE(0), pkt.length - 4);
  return decodeResponse(pkt[4]!, pkt.subarray(5));
}

const all: MilterResponse[] = [
  { type: 'continue' },
  { type: 'accept' },
  { type: 'reject' },
  { type: 'tempfail' },
  { type: 'discard' },
  { type: 'skip' },
  { type: 'progress' },
  { type: 'shutdown' },
  { type: 'connFail' },
  { type: 'replyCode', text: '550 5.7.1 Message rejected' },
  { type: 'replyCode', text: '451-4.7.1 first\r\n451 4.7.1 100%% second' },
  { type: 'optneg', version: 6, actions: 0x101, protocol: 0x100400, symbolLists: [{ stage: 0, names: '{client_addr} j' }] },
  { type: 'optneg', version: 2, actions: 0, protocol: 0, symbolLists: [] },
  { type: 'addRcpt', rcpt: '<new@example.org>' },
  { type: 'delRcpt', rcpt: '<old@example.org>' },
  { type: 'addRcptPar', rcpt: '<n@example.org>', args: 'NOTIFY=NEVER ORCPT=rfc822;x@y' },
  { type: 'addRcptPar', rcpt: '<n@example.org>' },
  { type: 'chgFrom', sender: '<>', args: 'RET=HDRS' },
  { type: 'chgFrom', sender: '<s@example.org>' },
  { type: 'addHeader', name: 'X-Spam', value: 'no' },
  { type: 'addHeader', name: 'X-Empty', value: '' },
  { type: 'insHeader', index: 0, name: 'X-Top', value: 'folded\n\tvalue' },
  { type: 'chgHeader', index: 2, name: 'Subject', value: '' },
  { type: 'replBody', chunk: Buffer.from('new body\r\n') },
  { type: 'quarantine', reason: 'suspicious' },
  { type: 'setSymList', stage: 3, names: '{rcpt_host} i' },
];

test('every milter response survives encode -> decode', () => {
  for (const r of all) assert.deepEqual(roundTrip(r), r, r.type);
});

test('payload-less replies are the exact 5-byte packets', () => {
  assert.deepEqual([...encodeResponse({ type: 'continue' })], [0, 0, 0, 1, 0x63]);
  assert.deepEqual([...encodeResponse({ type: 'tempfail' })], [0, 0, 0, 1, 0x74]);
});

test('OPTNEG reply matches the libmilter wire example', () => {
  const pkt = encodeResponse({ type: 'optneg', version: 6, actions: 1, protocol: 0x100400, symbolLists: [{ stage: 0, names: '{client_addr} j' }] });
  assert.equal(pkt.toString('hex'), '000000214f000000060000000100100400' + '00000000' + Buffer.from('{client_addr} j\0').toString('hex'));
});

test('encoding validates fields', () => {
  const bad: MilterResponse[] = [
    { type: 'addHeader', name: '', value: 'x' },
    { type: 'addHeader', name: 'Bad:Name', value: 'x' },
    { type: 'addHeader', name: 'Bad Name', value: 'x' },
    { type: 'addHeader', name: 'X', value: 'a\r\n\tb' },
    { type: 'addHeader', name: 'X', value: 'a\nInjected: yes' },
    { type: 'addHeader', name: 'X', value: 'nul\0' },
    { type: 'insHeader', index: -1, name: 'X', value: 'v' },
    { type: 'chgHeader', index: 1.5, name: 'X', value: 'v' },
    { type: 'quarantine', reason: '' },
    { type: 'addRcpt', rcpt: '' },
    { type: 'chgFrom', sender: '' },
    { type: 'replBody', chunk: Buffer.alloc(65536) },
  ];
  for (const r of bad) assert.throws(() => encodeResponse(r), MilterEncodeError, JSON.stringify(r).slice(0, 80));
  assert.throws(() => encodeResponse({ type: 'replyCode', text: '250 ok' }), ReplyCodeError);
  assert.throws(() => encodeResponse({ type: 'replyCode', text: '550 5.7.1 100% bad' }), ReplyCodeError);
});

test('body replacement is split into packets of at most 65535 bytes', () => {
  const body = Buffer.alloc(65535 * 2 + 10, 0x41);
  const pkts = encodeReplaceBody(body);
  assert.equal(pkts.length, 3);
  assert.deepEqual(pkts.map((p) => p.length - 5), [65535, 65535, 10]);
  assert.ok(Buffer.concat(pkts.map((p) => p.subarray(5))).equals(body));
  assert.equal(encodeReplaceBody(Buffer.alloc(0)).length, 1);
});

test('strict decoding refuses extra payload and unknown bytes', () => {
  assert.throws(() => decodeResponse(0x63, Buffer.from('x')), MilterProtocolError);
  assert.throws(() => decodeResponse(0x7a, Buffer.alloc(0)), MilterProtocolError);
  assert.throws(() => decodeResponse(0x2d, Buffer.from('a\0b\0')), MilterProtocolError);
  assert.throws(() => decodeResponse(0x65, Buffer.from('a\0b\0c\0')), MilterProtocolError);
});
