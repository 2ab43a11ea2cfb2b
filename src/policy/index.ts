export * from './types.js';
export * from './sender.js';
export * from './next-hops.js';
export * from './assess.js';
export * from './decide.js';
export * from './remedy.js';
export * from './dmarc.js';
