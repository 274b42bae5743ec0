// "Try again later": the handler is retried after `delaySeconds`, counting against its retry limit.
import { HandlerError } from './handler-error.ts';

export class TemporaryError extends HandlerError {
  /** Seconds until the next attempt. */
  readonly delaySeconds: number;

  /** @param delaySeconds seconds until the next attempt. @default 60 */
  constructor(message: string, delaySeconds = 60) {
    super(message);
    this.name = 'TemporaryError';
    this.delaySeconds = delaySeconds;
  }
}
