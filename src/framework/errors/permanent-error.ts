// "This will never work": the handler is marked failed and not retried until the object changes.
import { HandlerError } from './handler-error.ts';

export class PermanentError extends HandlerError {
  constructor(message: string) {
    super(message);
    this.name = 'PermanentError';
  }
}
