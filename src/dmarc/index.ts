export {
  parseDmarcRecord,
  startsDmarcRecord,
  recordText,
  strongestDisposition,
  weaker,
  MAX_RECORD_OCTETS,
  type DmarcRecord,
  type DmarcPolicy,
  type AlignmentMode,
  type ParsedRecord,
} from './record.js';
export { discoverPolicy, discoverPolicyNow, organizationalDomain, organizationalDomainNow, walkNames, MAX_WALK_QUERIES, type Discovery, type DiscoveryOptions, type OrgDomain, type WalkStep, type StepOutcome } from './discover.js';
export { aligns, alignsNow, type Alignment } from './align.js';
export { parseFromHeader, MAX_FROM_OCTETS, type FromResult } from './from-header.js';
export { parsePublicSuffixList, type PublicSuffixList } from './psl.js';
