// Test data only (imported by the colocated unit tests, never by code that runs): one pod's
// allocation as an IPBlock records it.
import type { Allocation } from '../api/ipam.ts';

export const allocation = (pod = 'p', podUID?: string): Allocation => ({
  namespace: 'ns',
  pod,
  ...(podUID ? { podUID } : {}),
  containerID: `c-${pod}`,
  interface: 'eth0',
  allocatedAt: '2026-01-01T00:00:00Z',
});
