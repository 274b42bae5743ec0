// The shared base of the errors a handler raises on purpose. Each subclass says what the framework
// does next (retry later, or give up); anything else a handler throws is an unknown error and is
// retried with capped exponential backoff.
export class HandlerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HandlerError';
  }
}
