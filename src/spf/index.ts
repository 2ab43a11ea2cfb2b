/** RFC 7208 SPF evaluation. Knows nothing of milters; DNS comes through the Resolver contract. */
export {
  SpfEvaluator,
  DEFAULT_LIMITS,
  DEFAULT_EXPLANATION,
  splitSender,
  type SpfLimits,
  type SpfEvaluatorOptions,
  type CheckHostInput,
  type SpfCheck,
  type EffectiveRecord,
  type EvaluationOptions,
} from './evaluator.js';
export type { SpfResult, SpfTrace, SpfTraceNode, DnsQueryTrace } from './trace.js';
export type { SpfRecord, SpfTerm, MechanismTerm, ModifierTerm, MechanismName, Qualifier, MacroString, MacroToken } from './ast.js';
export { parseRecord, isSpfRecord } from './parser.js';
export { SpfSyntaxError, SpfInputError, EvaluationAbortedError } from './errors.js';
export { MemoResolver } from './memo-resolver.js';
export { lookupBudget, termCost, describeSpending, BUDGET_WARN_AT, type LookupBudget, type BudgetTerm } from './lookup-budget.js';
