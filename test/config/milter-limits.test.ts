import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, DEFAULTS, loadConfig } from '../../src/config/index.js';
import { MILTER_SERVER_DEFAULTS } from '../../src/milter/index.js';

const base = { MILTER_SOCKET: 'inet:8890@127.0.0.1' };

test('milter limits: documented defaults, and the library agrees where both have one', () => {
  const c = loadConfig(base);
  assert.equal(c.milterPacketTimeoutMs, 30_000);
  assert.equal(c.milterMaxBufferedBytes, 64 * 1024 * 1024);
  assert.equal(c.milterMaxQueuedPackets, 4096);
  assert.equal(c.milterMaxWriteBuffer, 1024 * 1024);
  assert.equal(DEFAULTS.milterPacketTimeoutMs, MILTER_SERVER_DEFAULTS.packetTimeoutMs);
  assert.equal(DEFAULTS.milterMaxBufferedBytes, MILTER_SERVER_DEFAULTS.maxBufferedBytes);
  assert.equal(DEFAULTS.milterMaxQueuedPackets, MILTER_SERVER_DEFAULTS.maxQueuedPackets);
  assert.equal(DEFAULTS.milterMaxWriteBuffer, MILTER_SERVER_DEFAULTS.maxWriteBuffer);
  assert.equal(c.milterProgressIntervalMs, 5000);
  assert.equal(DEFAULTS.milterProgressIntervalMs, MILTER_SERVER_DEFAULTS.progressIntervalMs);
});

test('MILTER_PROGRESS_INTERVAL_MS: 0 turns progress off, 100 ms to 300 s are accepted, others name the variable', () => {
  assert.equal(loadConfig({ ...base, MILTER_PROGRESS_INTERVAL_MS: '0' }).milterProgressIntervalMs, 0);
  assert.equal(loadConfig({ ...base, MILTER_PROGRESS_INTERVAL_MS: ' 100 ' }).milterProgressIntervalMs, 100);
  assert.equal(loadConfig({ ...base, MILTER_PROGRESS_INTERVAL_MS: '300000' }).milterProgressIntervalMs, 300_000);
  for (const value of ['1', '99', '300001', '-1', '5s', '2.5']) {
    assert.throws(
      () => loadConfig({ ...base, MILTER_PROGRESS_INTERVAL_MS: value }),
      (err: unknown) => err instanceof ConfigError && err.message.includes('MILTER_PROGRESS_INTERVAL_MS'),
      value,
    );
  }
});

test('milter limits: values are read, and a bad one names its variable', () => {
  const c = loadConfig({
    ...base,
    MILTER_PACKET_TIMEOUT_MS: '1500',
    MILTER_MAX_BUFFERED_BYTES: '1048576',
    MILTER_MAX_QUEUED_PACKETS: '100',
    MILTER_MAX_WRITE_BUFFER: '262144',
  });
  assert.deepEqual(
    [c.milterPacketTimeoutMs, c.milterMaxBufferedBytes, c.milterMaxQueuedPackets, c.milterMaxWriteBuffer],
    [1500, 1048576, 100, 262144],
  );
  const bad: [string, string][] = [
    ['MILTER_PACKET_TIMEOUT_MS', '0'],
    ['MILTER_PACKET_TIMEOUT_MS', '1e3'],
    ['MILTER_MAX_BUFFERED_BYTES', '1000'],
    ['MILTER_MAX_QUEUED_PACKETS', '-1'],
    ['MILTER_MAX_QUEUED_PACKETS', '2'],
    ['MILTER_MAX_WRITE_BUFFER', '64k'],
  ];
  for (const [name, value] of bad) {
    assert.throws(
      () => loadConfig({ ...base, [name]: value }),
      (err: unknown) => err instanceof ConfigError && err.message.includes(name),
      `${name}=${value}`,
    );
  }
});
