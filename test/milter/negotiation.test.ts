import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ActionFlag,
  buildSymbolLists,
  MilterEncodeError,
  MilterProtocolError,
  negotiate,
  ProtoFlag as P,
  Verdict,
  wireMacroName,
  type MilterApplication,
} from '../../src/milter/index.js';

const POSTFIX = { version: 6, actions: 0x1ff, protocol: 0x1fffff };
const ALL_SKIPS = P.NOCONNECT | P.NOHELO | P.NOMAIL | P.NORCPT | P.NOBODY | P.NOHDRS | P.NOEOH | P.NOUNKNOWN | P.NODATA;
const cont = async (): Promise<Verdict> => Verdict.continue();

function neg(app: MilterApplication, offer = POSTFIX, max = 1 << 20) {
  return negotiate(offer, app, buildSymbolLists(app.macros), max);
}

test('an application without callbacks skips every skippable step', () => {
  const n = neg({});
  assert.equal(n.version, 6);
  assert.equal(n.actions, 0);
  assert.equal(n.protocol, ALL_SKIPS);
  assert.deepEqual(n.symbolLists, []);
});

test('implemented callbacks are not skipped; noReply ones get NR bits', () => {
  const n = neg({ envfrom: cont, envrcpt: cont, header: cont, body: cont, noReply: ['header', 'body'] });
  assert.equal(n.protocol & (P.NOMAIL | P.NORCPT | P.NOHDRS | P.NOBODY), 0);
  assert.equal(n.protocol & P.NOCONNECT, P.NOCONNECT);
  assert.equal(n.protocol & P.NR_HDR, P.NR_HDR);
  assert.equal(n.protocol & P.NR_BODY, P.NR_BODY);
  assert.equal(n.protocol & P.NR_MAIL, 0);
  assert.equal(n.protocol & P.SKIP, P.SKIP, 'SKIP requested with a body callback');
});

test('only offered bits are set; unimplemented steps without NO* fall back to NR_*', () => {
  // A v2-like offer: only the v1 NO* bits plus NR_DATA/NR_UNKN, no NOUNKNOWN/NODATA.
  const offer = { version: 6, actions: 0x1ff, protocol: 0x7f | P.NR_UNKN | P.NR_DATA };
  const n = neg({ envfrom: cont }, offer);
  assert.equal(n.protocol & ~offer.protocol, 0);
  assert.equal(n.protocol & P.NR_UNKN, P.NR_UNKN);
  assert.equal(n.protocol & P.NR_DATA, P.NR_DATA);
  assert.equal(n.protocol & P.NOMAIL, 0);
});

test('noReply that the MTA cannot grant is reported', () => {
  const n = neg({ header: cont, noReply: ['header'] }, { version: 6, actions: 0x1ff, protocol: 0x7f });
  assert.equal(n.protocol & P.NR_HDR, 0);
  assert.ok(n.unavailable.includes('no-reply for header'));
});

test('actions: declared and offered only; SETSYMLIST when macros are requested', () => {
  const n = neg({ actions: ['ADDHDRS', 'CHGBODY'], macros: { connect: ['client_addr'] } }, { version: 6, actions: 0x101, protocol: 0x1fffff });
  assert.equal(n.actions, ActionFlag.ADDHDRS | ActionFlag.SETSYMLIST);
  assert.ok(n.unavailable.includes('action CHGBODY'));
  assert.deepEqual(n.symbolLists, [{ stage: 0, names: '{client_addr}' }]);
  const noSym = neg({ macros: { connect: ['client_addr'] } }, { version: 6, actions: 0x0f, protocol: 0x1fffff });
  assert.equal(noSym.actions, 0);
  assert.deepEqual(noSym.symbolLists, []);
  assert.ok(noSym.unavailable.includes('macro lists (SETSYMLIST)'));
});

test('macro lists: stage numbers, braces for long names, duplicates removed', () => {
  const lists = buildSymbolLists({ connect: ['{client_addr}', 'client_addr', 'j'], envrcpt: ['{rcpt_host}', 'i'], eom: ['i'], eoh: ['{i}'], helo: [] });
  assert.deepEqual(lists, [
    { stage: 0, names: '{client_addr} j' },
    { stage: 3, names: '{rcpt_host} i' },
    { stage: 5, names: 'i' },
    { stage: 6, names: 'i' },
  ]);
  assert.equal(wireMacroName('daemon_name'), '{daemon_name}');
  assert.equal(wireMacroName('{_}'), '_');
  assert.throws(() => wireMacroName('two words'), MilterEncodeError);
  assert.throws(() => wireMacroName(''), MilterEncodeError);
  assert.throws(() => buildSymbolLists({ connect: ['a{b'] }), MilterEncodeError);
});

test('EOH macros keep the EOH step even without an eoh callback (as no-reply)', () => {
  const n = neg({ macros: { eoh: ['i'] } });
  assert.equal(n.protocol & P.NOEOH, 0);
  assert.equal(n.protocol & P.NR_EOH, P.NR_EOH);
});

test('versions: 6 for >= 6, echo 2..5, refuse < 2', () => {
  assert.equal(neg({}, { version: 7, actions: 0x1ff, protocol: 0x1fffff }).version, 6);
  assert.equal(neg({}, { version: 4, actions: 0x3f, protocol: 0x3ff }).version, 4);
  assert.equal(neg({}, { version: 2, actions: 0x3f, protocol: 0x7f }).version, 2);
  assert.throws(() => neg({}, { version: 1, actions: 0xf, protocol: 0x3f }), MilterProtocolError);
});

test('zero offer fields mean the version-1 defaults', () => {
  const n = neg({ actions: ['ADDHDRS', 'QUARANTINE'] }, { version: 2, actions: 0, protocol: 0 });
  assert.equal(n.actions, ActionFlag.ADDHDRS);
  assert.equal(n.protocol & ~0x3f, 0);
});

test('capabilities: leading space, rejected recipients, MDS echo', () => {
  const n = neg({ headerLeadingSpace: true, rejectedRecipients: true }, { version: 6, actions: 0x1ff, protocol: 0x1fffff | P.MDS_256K | P.MDS_1M });
  assert.equal(n.protocol & P.HDR_LEADSPC, P.HDR_LEADSPC);
  assert.equal(n.protocol & P.RCPT_REJ, P.RCPT_REJ);
  assert.equal(n.protocol & (P.MDS_1M | P.MDS_256K), P.MDS_1M);
  const small = neg({}, { version: 6, actions: 0x1ff, protocol: 0x1fffff | P.MDS_256K | P.MDS_1M }, 300_000);
  assert.equal(small.protocol & (P.MDS_1M | P.MDS_256K), P.MDS_256K);
  assert.equal(neg({}).protocol & (P.MDS_1M | P.MDS_256K | P.HDR_LEADSPC | P.RCPT_REJ), 0);
});

test('negotiation described in words: flag names, unknown bits in hex, macro lists by stage', async () => {
  const { ActionFlag, describeNegotiation, flagNames, ProtoFlag } = await import('../../src/milter/index.js');
  assert.deepEqual(flagNames(0x101, ActionFlag), ['ADDHDRS', 'SETSYMLIST']);
  assert.deepEqual(flagNames(0x00001000 | 0x40000000, ProtoFlag), ['NR_CONN', '0x40000000']);
  assert.deepEqual(flagNames(0, ProtoFlag), []);
  assert.deepEqual(
    describeNegotiation({ version: 6, actions: 0x1, protocol: 0x2 }, { version: 6, actions: 0x1, protocol: 0 }, [
      { stage: 2, names: 'i {mail_addr}' },
      { stage: 5, names: 'i' },
    ]),
    {
      offered: { version: 6, actions: ['ADDHDRS'], protocol: ['NOHELO'] },
      agreed: { version: 6, actions: ['ADDHDRS'], protocol: [] },
      macros: { envfrom: 'i {mail_addr}', eom: 'i' },
    },
  );
});
