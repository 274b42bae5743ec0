// NPWG multi-network: the request annotation, NAD resolution, and network-status (all pure).
export * from './annotation.ts';
export * from './resolve.ts';
export * from './status.ts';
export * from './default-route.ts';
export * from './node-findings.ts';
export * from './policy.ts';
export * from './delegate-status.ts';
