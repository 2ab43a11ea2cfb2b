import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodePacket, MilterEncodeError, MilterProtocolError, PacketDecoder } from '../../src/milter/index.js';
import { encodeCommand, type MtaCommand } from '../support/milter-codec.js';

const stream: MtaCommand[] = [
  { type: 'optneg', version: 6, actions: 0x1ff, protocol: 0x1fffff },
  { type: 'macro', stage: 0x43, pairs: [{ name: 'j', value: 'mx.example' }, { name: '{daemon_name}', value: '' }] },
  { type: 'connect', hostname: '[192.0.2.1]', family: 'inet', port: 55000, address: '192.0.2.1' },
  { type: 'helo', name: 'client.example' },
  { type: 'mail', args: ['<a@example.org>', 'SIZE=10'] },
  { type: 'body', chunk: Buffer.from([0, 1, 2, 0, 13, 10]) },
  { type: 'eob', data: Buffer.alloc(0) },
  { type: 'abort' },
  { type: 'quit' },
];

function collect(chunks: Buffer[]): [number, string][] {
  const out: [number, string][] = [];
  const d = new PacketDecoder((cmd, payload) => out.push([cmd, payload.toString('hex')]));
  for (const c of chunks) d.push(c);
  assert.equal(d.bufferedBytes, 0);
  return out;
}

test('decoder yields the same packets for every split of one stream', () => {
  const whole = Buffer.concat(stream.map(encodeCommand));
  const expected = collect([whole]);
  assert.equal(expected.length, stream.length);
  for (let i = 0; i <= whole.length; i++) {
    assert.deepEqual(collect([whole.subarray(0, i), whole.subarray(i)]), expected, `split at ${i}`);
  }
  // and one byte at a time
  const bytes = [...whole].map((b) => Buffer.from([b]));
  assert.deepEqual(collect(bytes), expected);
});

test('decoder handles three-way splits and payloads kept past later chunks', () => {
  const whole = Buffer.concat(stream.map(encodeCommand));
  const expected = collect([whole]);
  for (let i = 0; i < whole.length; i += 3) {
    for (let j = i; j < whole.length; j += 5) {
      assert.deepEqual(collect([whole.subarray(0, i), whole.subarray(i, j), whole.subarray(j)]), expected);
    }
  }
});

test('decoder gathers a large packet arriving in many reads', () => {
  const big = Buffer.alloc(300_000, 0x61);
  const pkt = encodeCommand({ type: 'body', chunk: big });
  const got: Buffer[] = [];
  const d = new PacketDecoder((_c, p) => got.push(p));
  for (let off = 0; off < pkt.length; off += 1000) d.push(pkt.subarray(off, off + 1000));
  assert.equal(got.length, 1);
  assert.ok(got[0]!.equals(big));
});

test('length 0 and oversized lengths are protocol errors', () => {
  const d = new PacketDecoder(() => assert.fail('no packet expected'), 100);
  assert.throws(() => d.push(Buffer.from([0, 0, 0, 0])), (e: unknown) => e instanceof MilterProtocolError && e.code === 'ZERO_LENGTH');
  const d2 = new PacketDecoder(() => assert.fail('no packet expected'), 100);
  // The header alone is enough to refuse: no need to wait for 102 bytes.
  assert.throws(() => d2.push(Buffer.from([0, 0, 0, 102, 0x42])), (e: unknown) => e instanceof MilterProtocolError && e.code === 'PACKET_TOO_LARGE');
  const d3 = new PacketDecoder(() => undefined, 100);
  d3.push(Buffer.concat([Buffer.from([0, 0, 0, 101, 0x42]), Buffer.alloc(100)]));
  assert.equal(d3.bufferedBytes, 0);
});

test('stop() prevents packets after it, even within the same chunk', () => {
  const seen: number[] = [];
  const d: PacketDecoder = new PacketDecoder((cmd) => {
    seen.push(cmd);
    d.stop();
  });
  d.push(Buffer.concat([encodeCommand({ type: 'quit' }), encodeCommand({ type: 'abort' })]));
  assert.deepEqual(seen, [0x51]);
});

test('encodePacket refuses payloads above 65535 bytes', () => {
  assert.equal(encodePacket(0x62, Buffer.alloc(65535)).length, 65540);
  assert.throws(() => encodePacket(0x62, Buffer.alloc(65536)), MilterEncodeError);
});
