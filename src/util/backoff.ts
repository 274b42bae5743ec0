// Capped exponential backoff for unknown errors: base * 2^retry seconds, never more than the cap.
/** Delay in seconds before attempt `retry + 1` after `retry` failures (retry counts from 0). */
export function backoffSeconds(base: number, retry: number, cap: number): number {
  if (base <= 0) return 0;
  const exp = base * 2 ** Math.min(retry, 30);
  return Math.min(cap, exp);
}
