// Loads and runs the handlebars templates in ./templates. Every rendered file (conflist, manifests,
// NAD configs) comes from one of them, so what Trellis writes can be read in one folder.
// Templates emit YAML or JSON in which every value goes through the `json` helper: JSON is valid
// YAML flow syntax, so user strings can never break the document structure. Strict mode makes a
// missing field an error at render time instead of a silently empty value.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Handlebars from 'handlebars';
import { load } from 'js-yaml';
import { sortKeys } from './canonical.ts';

export const TEMPLATE_DIR = fileURLToPath(new URL('./templates/', import.meta.url));

/** The templates that exist; a name outside this list is a programming error caught by tsc. */
export type TemplateName =
  | 'conflist.json'
  | 'configmap.yaml'
  | 'daemonset.yaml'
  | 'serviceaccount.yaml'
  | 'clusterrole.yaml'
  | 'clusterrolebinding.yaml'
  | 'agent-admission-policy.yaml'
  | 'agent-admission-binding.yaml'
  | 'agent-secrets-role.yaml'
  | 'agent-secrets-rolebinding.yaml'
  | 'nad.yaml'
  | 'nad-config.json'
  | 'bird.conf'
  | 'bird-tor.conf';

const hb = Handlebars.create();
// `{{json x}}` prints x as JSON with sorted keys. Helper arguments escape handlebars' strict mode,
// so the helper itself refuses undefined: optional values are guarded with {{#if}} in the template.
hb.registerHelper('json', (value: unknown, options: { loc?: { start?: { line?: number } } }) => {
  if (value === undefined)
    throw new Error(`template value is undefined (line ${options.loc?.start?.line ?? '?'})`);
  return JSON.stringify(sortKeys(value));
});

type Template = ReturnType<typeof hb.compile>;
const compiled = new Map<TemplateName, Template>();

function template(name: TemplateName): Template {
  let t = compiled.get(name);
  if (!t) {
    const source = readFileSync(`${TEMPLATE_DIR}${name}.hbs`, 'utf8');
    t = hb.compile(source, { noEscape: true, strict: true });
    compiled.set(name, t);
  }
  return t;
}

/** The template's text output. */
export function renderText(name: TemplateName, data: object): string {
  return template(name)(data);
}

/** The template's output parsed (YAML or JSON) into data with sorted keys. */
export function renderData<T>(name: TemplateName, data: object): T {
  const text = renderText(name, data);
  return sortKeys(load(text)) as T;
}
