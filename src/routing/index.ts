// BGP routing: BIRD 2 configuration rendered from a template, and session state parsed back.
// Pure: the agent owns the daemon's process and files. See docs/bgp.md.
export {
  BGP_KERNEL_TABLE,
  BirdConfigError,
  DEFAULT_GRACEFUL_RESTART_SECONDS,
  passwordProblem,
  planSessions,
  renderBirdConfig,
  sessionName,
  type BirdInput,
  type BirdSession,
  type MeshNode,
} from './config.ts';
export { establishedCount, parseBirdProtocols } from './status.ts';
export { renderTorConfig, type TorNeighbor } from './tor.ts';
