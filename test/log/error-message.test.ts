import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorMessage } from '../../src/log/index.js';

test('errorMessage: an Error gives its message, whatever its class', () => {
  assert.equal(errorMessage(new Error('boom')), 'boom');
  assert.equal(errorMessage(new RangeError('out of range', { cause: new Error('inner') })), 'out of range');
});

test('errorMessage: a thrown non-Error is turned into a string', () => {
  assert.equal(errorMessage('plain text'), 'plain text');
  assert.equal(errorMessage(42), '42');
  assert.equal(errorMessage(undefined), 'undefined');
  assert.equal(errorMessage(null), 'null');
});

test('errorMessage: an object with a string message gives it; one without does not throw', () => {
  assert.equal(errorMessage({ message: 'from another realm' }), 'from another realm');
  assert.equal(errorMessage({ reason: 'x' }), '[object Object]');
  assert.equal(errorMessage(Object.create(null)), '[object Object]');
});

test('errorMessage: an Error with an empty message says what it can', () => {
  const aggregate = new AggregateError([new Error('connect ECONNREFUSED ::1:389'), new Error('connect ECONNREFUSED 127.0.0.1:389')], '');
  assert.equal(errorMessage(aggregate), 'connect ECONNREFUSED ::1:389; connect ECONNREFUSED 127.0.0.1:389');
  assert.equal(errorMessage(Object.assign(new Error(''), { code: 'ECONNREFUSED' })), 'ECONNREFUSED');
  assert.equal(errorMessage(new TypeError()), 'TypeError');
  assert.equal(errorMessage(new AggregateError([new Error('a')], 'all failed')), 'all failed');
});

test('errorMessage never throws', () => {
  const hostile = {
    get message(): string {
      throw new Error('getter');
    },
  };
  assert.equal(errorMessage(hostile), '[object Object]');
});
