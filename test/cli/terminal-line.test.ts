// check and audit print records and reasons that come from DNS: nothing in them may reach the
// terminal raw that moves the cursor, starts a line or reorders text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { terminalLine, terminalQuoted } from '../../src/cli/domain-report.js';

const hostile = 'v=spf1 \u001b[2J\u0085\u009b31m\u2028\u202e\r\n-all';

test('check and audit print DNS text with every control, line break and bidi character escaped', () => {
  for (const out of [terminalLine(hostile), terminalQuoted(hostile)]) {
    // eslint-disable-next-line no-control-regex
    assert.doesNotMatch(out, /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e]/, JSON.stringify(out));
    assert.match(out, /^"?v=spf1 /);
  }
  assert.equal(terminalLine('v=spf1 include:_spf.esp.example -all'), 'v=spf1 include:_spf.esp.example -all', 'plain text is left as it is');
  assert.equal(terminalQuoted('a "b"'), '"a \\"b\\""');
});
