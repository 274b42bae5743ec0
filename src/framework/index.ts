// The framework's public surface: register handlers on a Registry, run it with runOperator.
export { Registry, type WatchScope } from './registry.ts';
export { runOperator, type RunOptions } from './run.ts';
export { Controller, DEFAULT_FINALIZER } from './controller.ts';
export { LeaderElector } from './leader.ts';
export { HandlerError } from './errors/handler-error.ts';
export { TemporaryError } from './errors/temporary-error.ts';
export { PermanentError } from './errors/permanent-error.ts';
export { postEvent } from './events.ts';
export { Patch } from './patch.ts';
export type { HandlerKwargs, HandlerFn, HandlerPolicy, TimerPolicy, EventKwargs, Reason } from './handler.ts';
export { PROGRESS_ANNOTATION, LAST_HANDLED_ANNOTATION } from './essence.ts';
