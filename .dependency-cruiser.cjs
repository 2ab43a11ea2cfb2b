/**
 * The layers of src/ and the rule against import cycles, checked by `npm run lint`
 * (README, "Development"). A layer may import only the layers listed for it; the protocol
 * (milter) and the SPF evaluator (spf) know nothing of each other, nor does the Sender Rewriting
 * Scheme and its socketmap server (srs) know of either; the policy decides from
 * plain values and knows neither the protocol nor the environment (config); the composition
 * root (app) wires parts for the daemon and the other commands alike; cli sits on top.
 * src/lib holds small generic helpers (no imports) every layer may use.
 * test/lint/layers.test.ts shows both rules failing on a deliberate violation.
 */
const LAYERS = {
  lib: [],
  log: [],
  dns: ['log'],
  milter: ['log'],
  srs: ['log'],
  spf: ['dns', 'log'],
  dmarc: ['dns', 'log'],
  policy: ['spf', 'dmarc', 'dns', 'log'],
  config: ['dns', 'milter', 'spf', 'dmarc', 'policy', 'log'],
  ldap: ['config', 'policy', 'log'],
  history: [],
  notify: ['history', 'log'],
  ops: ['config', 'dns', 'ldap', 'milter', 'spf', 'srs', 'dmarc', 'policy', 'log'],
  app: ['config', 'dns', 'ldap', 'milter', 'ops', 'spf', 'srs', 'dmarc', 'policy', 'log'],
  daemon: ['app', 'config', 'dns', 'ldap', 'milter', 'ops', 'spf', 'srs', 'dmarc', 'policy', 'log'],
  cli: ['app', 'daemon', 'history', 'notify', 'config', 'dns', 'ldap', 'milter', 'ops', 'spf', 'srs', 'dmarc', 'policy', 'log'],
};

const layerRules = Object.entries(LAYERS).map(([layer, allowed]) => ({
  name: `layer-${layer}`,
  comment: `src/${layer} may import only from ${[...allowed, 'lib'].map((d) => `src/${d}`).join(', ')}`,
  severity: 'error',
  from: { path: `^src/${layer}/` },
  to: { path: '^src/', pathNot: [`^src/${layer}/`, '^src/lib/', ...allowed.map((dep) => `^src/${dep}/`)] },
}));

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'no-layer-unknown',
      comment: 'every directory under src/ is a layer named in LAYERS (.dependency-cruiser.cjs)',
      severity: 'error',
      from: { path: '^src/', pathNot: `^src/(${Object.keys(LAYERS).join('|')})/` },
      to: {},
    },
    {
      name: 'no-circular',
      comment: 'no import cycles, type-only imports included: two modules in a cycle cannot be read apart',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    includeOnly: '^src/',
    // `import type` counts: the compiler erases it, the reader does not.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
