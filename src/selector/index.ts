// Label selectors with Kubernetes semantics: the object form (compileSelector) and the query-string
// form (parseSelector) compile to one Selector type. See docs/selectors.md.
export {
  SelectorError,
  compileSelector,
  labelKeyProblem,
  labelValueProblem,
  matchesSelector,
  type AbsentMeans,
  type LabelSelector,
  type LabelSelectorRequirement,
  type Labels,
  type Selector,
} from './selector.ts';
export { parseSelector } from './parse.ts';
