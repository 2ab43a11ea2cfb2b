import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import type { Resolver } from '../../../src/dns/types.js';
import { SpfEvaluator } from '../../../src/spf/evaluator.js';
import type { SpfResult } from '../../../src/spf/types.js';
import { type ZoneData, ZoneResolver } from './zone-resolver.js';

/**
 * Runs files in the openspf/pyspf conformance-suite format (see test/data/spf-suite/): each
 * test goes through the evaluator with a fresh fake DNS built from its scenario's zonedata and
 * the default explanation set to the literal "DEFAULT".
 */

export class SuiteFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SuiteFormatError';
  }
}

export interface SuiteTest {
  id: string;
  scenario: string;
  helo: string;
  host: string;
  mailfrom: string;
  /** Acceptable results, preferred first. */
  results: string[];
  explanation?: string;
}

export interface SuiteScenario {
  description: string;
  zonedata: ZoneData;
  tests: SuiteTest[];
}

export interface SuiteOutcome {
  id: string;
  scenario: string;
  ok: boolean;
  expected: string[];
  actual: SpfResult | 'error';
  expectedExplanation?: string;
  actualExplanation?: string;
  /** The trace reason, or the error message when evaluation threw. */
  reason: string;
  queries: number;
}

export interface SuiteReport {
  passed: number;
  failed: number;
  outcomes: SuiteOutcome[];
}

export const SUITE_DEFAULT_EXPLANATION = 'DEFAULT';

/** Parses a multi-document YAML stream of scenarios; throws SuiteFormatError when it is not one. */
export function loadSuite(text: string): SuiteScenario[] {
  const docs = parseAllDocuments(text, { uniqueKeys: false, prettyErrors: false });
  if (!Array.isArray(docs)) throw new SuiteFormatError('not a YAML stream');
  const scenarios: SuiteScenario[] = [];
  docs.forEach((doc, k) => {
    if (doc.errors.length > 0) throw new SuiteFormatError(`document ${k + 1}: ${doc.errors[0].message}`);
    const data: unknown = doc.toJS({ maxAliasCount: 1000 });
    if (data === null || data === undefined) return;
    if (typeof data !== 'object' || Array.isArray(data)) throw new SuiteFormatError(`document ${k + 1} is not a map`);
    const map = data as Record<string, unknown>;
    const description = String(map.description ?? `scenario ${k + 1}`);
    const tests = map.tests ?? {};
    if (typeof tests !== 'object' || tests === null || Array.isArray(tests)) {
      throw new SuiteFormatError(`document ${k + 1} (${description}): "tests" is not a map`);
    }
    const zonedata = map.zonedata ?? {};
    if (typeof zonedata !== 'object' || zonedata === null || Array.isArray(zonedata)) {
      throw new SuiteFormatError(`document ${k + 1} (${description}): "zonedata" is not a map`);
    }
    scenarios.push({
      description,
      zonedata: zonedata as ZoneData,
      tests: Object.entries(tests as Record<string, unknown>).map(([id, t]) => toTest(id, description, t)),
    });
  });
  return scenarios;
}

function toTest(id: string, scenario: string, raw: unknown): SuiteTest {
  if (typeof raw !== 'object' || raw === null) throw new SuiteFormatError(`test ${id} is not a map`);
  const t = raw as Record<string, unknown>;
  const result = t.result;
  const results = (Array.isArray(result) ? result : [result]).filter((r) => r !== undefined && r !== null).map((r) => String(r).trim().toLowerCase());
  if (results.length === 0) throw new SuiteFormatError(`test ${id} has no result`);
  const str = (v: unknown) => (v === undefined || v === null ? '' : String(v));
  return {
    id,
    scenario,
    helo: str(t.helo),
    host: str(t.host),
    mailfrom: str(t.mailfrom),
    results,
    explanation: t.explanation === undefined || t.explanation === null ? undefined : String(t.explanation),
  };
}

export interface SuiteOptions {
  /** Puts something between the evaluator and the zone data, e.g. the product's DNS cache. */
  wrap?: (zone: Resolver) => Resolver;
}

export async function runSuite(scenarios: SuiteScenario[], options: SuiteOptions = {}): Promise<SuiteReport> {
  const outcomes: SuiteOutcome[] = [];
  for (const scenario of scenarios) {
    for (const test of scenario.tests) outcomes.push(await runTest(scenario, test, options));
  }
  const passed = outcomes.filter((o) => o.ok).length;
  return { passed, failed: outcomes.length - passed, outcomes };
}

async function runTest(scenario: SuiteScenario, test: SuiteTest, options: SuiteOptions): Promise<SuiteOutcome> {
  const resolver = new ZoneResolver(scenario.zonedata);
  const evaluator = new SpfEvaluator({ resolver: options.wrap ? options.wrap(resolver) : resolver, defaultExplanation: SUITE_DEFAULT_EXPLANATION });
  const base = { id: test.id, scenario: scenario.description, expected: test.results, expectedExplanation: test.explanation };
  try {
    const check = await evaluator.checkHost({ ip: test.host, sender: test.mailfrom, helo: test.helo });
    let ok = test.results.includes(check.result);
    // Explanations are compared for fail results only (suite README).
    if (ok && check.result === 'fail' && test.explanation !== undefined) ok = check.explanation === test.explanation;
    return { ...base, ok, actual: check.result, actualExplanation: check.explanation, reason: check.reason, queries: resolver.queryCount };
  } catch (e) {
    return { ...base, ok: false, actual: 'error', reason: e instanceof Error ? e.message : String(e), queries: resolver.queryCount };
  }
}

export async function runSuiteFile(path: string, options: SuiteOptions = {}): Promise<SuiteReport> {
  return runSuite(loadSuite(await readFile(path, 'utf8')), options);
}

/** One line per failure: id, expected and actual result and explanation, and the trace reason. */
export function describeFailure(o: SuiteOutcome): string {
  const exp = (s: string | undefined) => (s === undefined ? '' : ` explanation=${JSON.stringify(s)}`);
  return (
    `FAIL ${o.id} [${o.scenario}]: expected ${o.expected.join('|')}${exp(o.expectedExplanation)}, ` +
    `got ${o.actual}${exp(o.actualExplanation)} (${o.reason})`
  );
}
