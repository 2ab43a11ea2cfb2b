import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatSocketSpec, parseSocketSpec, SocketSpecError } from '../../src/milter/index.js';

test('libmilter socket specs parse', () => {
  assert.deepEqual(parseSocketSpec('/run/m.sock'), { kind: 'unix', path: '/run/m.sock' });
  assert.deepEqual(parseSocketSpec(':/run/m.sock'), { kind: 'unix', path: '/run/m.sock' });
  assert.deepEqual(parseSocketSpec('unix:/run/m.sock'), { kind: 'unix', path: '/run/m.sock' });
  assert.deepEqual(parseSocketSpec('local:/run/m.sock'), { kind: 'unix', path: '/run/m.sock' });
  assert.deepEqual(parseSocketSpec('inet:8890'), { kind: 'inet', family: 4, port: 8890 });
  assert.deepEqual(parseSocketSpec('inet:8890@127.0.0.1'), { kind: 'inet', family: 4, port: 8890, host: '127.0.0.1' });
  assert.deepEqual(parseSocketSpec('inet:8890@[127.0.0.1]'), { kind: 'inet', family: 4, port: 8890, host: '127.0.0.1' });
  assert.deepEqual(parseSocketSpec('inet:8890@localhost'), { kind: 'inet', family: 4, port: 8890, host: 'localhost' });
  assert.deepEqual(parseSocketSpec('INET6:0@[::1]'), { kind: 'inet', family: 6, port: 0, host: '::1' });
  assert.deepEqual(parseSocketSpec('inet6:8890@::1'), { kind: 'inet', family: 6, port: 8890, host: '::1' });
  assert.deepEqual(parseSocketSpec('inet6:8890'), { kind: 'inet', family: 6, port: 8890 });
});

test('errors are typed and say what is wrong', () => {
  const cases: [string, RegExp][] = [
    ['', /empty/],
    ['tcp:8890', /unknown protocol "tcp"/],
    ['8890', /expected unix:/],
    ['unix:', /missing socket path/],
    ['unix:relative/path', /absolute/],
    ['inet:', /missing port/],
    ['inet:smtp@localhost', /not a number/],
    ['inet:70000', /out of range/],
    ['inet:8890@', /empty host/],
    ['inet:8890@[::1', /unterminated/],
    ['inet:8890@[nothost]', /not an IP address/],
    ['inet:8890@::1', /use inet6/],
    ['inet6:8890@127.0.0.1', /use inet$/],
    ['inet:8890@bad_host!', /neither an IP address nor a host name/],
    ['inet:127.0.0.1:8890', /not a number/],
  ];
  for (const [spec, re] of cases) {
    assert.throws(() => parseSocketSpec(spec), (e: unknown) => e instanceof SocketSpecError && e.code === 'BAD_SOCKET_SPEC' && re.test(e.message), spec);
  }
});

test('formatSocketSpec round-trips', () => {
  for (const s of ['unix:/run/m.sock', 'inet:8890', 'inet:8890@127.0.0.1', 'inet6:8890@[::1]', 'inet6:1']) {
    assert.equal(formatSocketSpec(parseSocketSpec(s)), s);
  }
});
