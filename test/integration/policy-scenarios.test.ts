// The sos-milter policy, case by case from test/scenarios/*.yml, through the milter protocol
// against the daemon with a real Knot DNS (zones in test/data/dns/policy/) and a real slapd
// (test/data/ldap/policy.ldif). One Knot and one slapd serve every file; each file gets its
// own daemon with that file's environment.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { knotSkipReason, startKnot, type KnotInstance } from '../support/knot.js';
import { slapdUnavailableReason, startSlapd, type SlapdInstance } from '../support/slapd.js';
import {
  loadScenarioFiles,
  POLICY_DNS,
  POLICY_LDAP,
  SCENARIOS_DIR,
  playCase,
  scenarioEnv,
  startScenarioDaemon,
  type ScenarioDaemon,
  type ScenarioServers,
} from '../support/scenario-runner.js';

const files = loadScenarioFiles(SCENARIOS_DIR);
const skip = knotSkipReason() ?? slapdUnavailableReason() ?? undefined;

describe('policy scenarios', { skip }, () => {
  let knot: KnotInstance | undefined;
  let slapd: SlapdInstance | undefined;
  const servers = {} as ScenarioServers;
  const rejectIds: string[] = [];

  before(async () => {
    knot = await startKnot(POLICY_DNS);
    slapd = await startSlapd(POLICY_LDAP);
    Object.assign(servers, { dnsPort: knot.port, ldapUrl: slapd.url, ldapSearchBase: `ou=domains,${slapd.suffix}` });
  });
  after(async () => {
    await knot?.close();
    await slapd?.close();
  });

  test('there are scenario files with cases', () => {
    assert.ok(files.length >= 4);
    assert.ok(files.every((f) => f.cases.length > 0));
  });

  for (const file of files) {
    describe(`${file.file}: ${file.description}`, () => {
      let sd: ScenarioDaemon | undefined;
      before(async () => {
        sd = await startScenarioDaemon(scenarioEnv(file.env, servers));
      });
      after(async () => {
        await sd?.stop();
      });
      for (const c of file.cases) {
        test(c.name, async () => {
          rejectIds.push(...(await playCase(sd!, c)));
        });
      }
    });
  }

  test('every reject carries a new id', () => {
    assert.ok(rejectIds.length > 10, `only ${rejectIds.length} rejects seen`);
    assert.equal(new Set(rejectIds).size, rejectIds.length, `repeated reject ids: ${rejectIds.join(' ')}`);
  });
});
