/** RFC 7208 SPF evaluation. Knows nothing of milters; DNS comes through the Resolver contract. */
export { SpfEvaluator, DEFAULT_LIMITS, DEFAULT_EXPLANATION, splitSender, type SpfLimits, type SpfEvaluatorOptions } from './evaluator.js';
export type {
  CheckHostInput,
  SpfCheck,
  EffectiveRecord,
  EvaluationOptions,
  SpfResult,
  SpfTrace,
  SpfTraceNode,
  DnsQueryTrace,
  SpfRecord,
  SpfTerm,
  MechanismTerm,
  AllMechanism,
  IncludeMechanism,
  AMechanism,
  MxMechanism,
  PtrMechanism,
  Ip4Mechanism,
  Ip6Mechanism,
  ExistsMechanism,
  DnsMechanism,
  ModifierTerm,
  MechanismName,
  Qualifier,
  MacroString,
  MacroToken,
} from './types.js';
export { parseRecord, isSpfRecord } from './parser.js';
export { SpfError, type SpfErrorCode, SpfSyntaxError, SpfInputError, EvaluationAbortedError } from './errors.js';
export { MemoResolver } from './memo-resolver.js';
export { lookupBudget, termCost, describeSpending, BUDGET_WARN_AT, type LookupBudget, type BudgetTerm } from './lookup-budget.js';
