// NetworkPolicy: API objects -> model -> one node's nftables ruleset (pure; see docs/policy.md).
export * from './types.ts';
export * from './api.ts';
export * from './explain.ts';
export * from './nft.ts';
export { isolating } from './match.ts';
