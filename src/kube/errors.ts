// An API server answer that was not 2xx, kept with its HTTP status and the server's Status body,
// so callers branch on `code` (404, 409, 410, 422) and users see the server's own message.
export class ApiError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly body: unknown;

  constructor(code: number, method: string, path: string, body: unknown) {
    const status = body as { message?: string; reason?: string } | undefined;
    super(`${method} ${path}: ${code} ${status?.message ?? JSON.stringify(body)}`);
    this.name = 'ApiError';
    this.code = code;
    this.reason = status?.reason ?? '';
    this.body = body;
  }
}

export function isApiError(err: unknown, code?: number): err is ApiError {
  return err instanceof ApiError && (code === undefined || err.code === code);
}
