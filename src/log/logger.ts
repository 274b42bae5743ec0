// The one logger module: structured pino JSON to stderr (stdout belongs to CNI results and CLI
// output). Components take a child logger; never log secrets or full kubeconfigs.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(component: string, level = process.env.TRELLIS_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name: component, level, base: { component } }, pino.destination(2));
}
