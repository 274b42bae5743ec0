// The contract between the node agent and IPAM. The agent calls these on CNI ADD/DEL/GC; the
// implementation keeps every fact in IPBlock objects so a killed agent loses nothing.
export interface AllocationRequest {
  /** Pod identity, recorded on every address so `kubectl get ipblocks -o yaml` attributes it. */
  namespace: string;
  pod: string;
  /** The pod's UID (K8S_POD_UID), recorded so orphan release tells incarnations of one name apart. */
  podUID?: string;
  containerID: string;
  interface: string;
  /**
   * Pool names to allocate from, one address each. Default: every ClusterNetwork pod pool whose
   * nodeSelector matches this node (one v4 and/or one v6 pool: dual-stack gets one of each).
   * Attachment pools are named `attachment:<name>`.
   */
  pools?: string[];
  /** Static addresses requested by annotation; each must fall in one of the pools. */
  staticIPs?: string[];
  /** The CNI network asking (an attachment network's config name), recorded for its GC. */
  network?: string;
}

export interface AllocatedIP {
  /** Bare address, e.g. 10.244.1.5 or fd00:10:244::5 */
  ip: string;
  /** Prefix length of the pool (for the interface address use /32 or /128 on pod-network pools). */
  prefixLength: number;
  family: 4 | 6;
  pool: string;
  /** The block the address came from (its CIDR). */
  block: string;
  gateway?: string;
}

export interface AttachmentRef {
  containerID: string;
  interface: string;
}

export interface NodeIpam {
  /** Allocates one address per pool; all-or-nothing (releases what it took if one pool fails). */
  allocate(req: AllocationRequest): Promise<AllocatedIP[]>;
  /** Releases every address held by this container+interface. Idempotent: 0 when none. */
  release(ref: AttachmentRef): Promise<number>;
  /** Addresses held by this container+interface (for CHECK and idempotent ADD). */
  lookup(ref: AttachmentRef): Promise<AllocatedIP[]>;
  /**
   * CNI GC: releases this node's addresses whose attachment is not in `valid`, skipping any
   * allocated less than `graceMs` ago so an ADD in flight is never raced. `inPool` limits it to
   * the pools of the network being collected (other networks' attachments are not its to judge);
   * `network` further limits it to the addresses that network asked for (a pool two networks
   * share holds both; an address recorded without a network is left to orphan reconciliation).
   */
  gc(
    valid: AttachmentRef[],
    graceMs?: number,
    inPool?: (pool: string) => boolean,
    network?: string,
  ): Promise<number>;
}

/** A pod that exists on this node, as periodic reconciliation sees it from the API. */
export interface LivePod {
  namespace: string;
  name: string;
  uid?: string;
}

/** NodeIpam plus what the agent's periodic reconciliation needs (added by the IPAM issue). */
export interface ReconcilingNodeIpam extends NodeIpam {
  /**
   * Releases this node's addresses whose pod is not in `livePods`, skipping any allocated less
   * than `graceMs` ago (an ADD in flight for a pod the API has not shown us yet).
   */
  releaseOrphans(livePods: LivePod[], graceMs?: number): Promise<number>;
}
