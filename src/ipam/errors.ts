// Errors IPAM raises for the caller to act on. Each names what the user must fix; `cniCode` is the
// CNI spec error code the agent should answer with (11 = try again later, 7 = invalid config,
// 999+ = plugin specific), so the agent maps them without string matching.
export class IpamError extends Error {
  readonly cniCode: number;
  constructor(message: string, cniCode: number) {
    super(message);
    this.name = 'IpamError';
    this.cniCode = cniCode;
  }
}

/** No free address is left anywhere in the pool: every block is claimed and full. */
export class PoolExhaustedError extends IpamError {
  readonly pool: string;
  constructor(pool: string, cidr: string) {
    super(
      `IP pool ${pool} (${cidr}) is exhausted: every address is allocated; grow the pool or free addresses`,
      11,
    );
    this.name = 'PoolExhaustedError';
    this.pool = pool;
  }
}

/** A requested static IP is held by another pod. */
export class StaticIPConflictError extends IpamError {
  constructor(ip: string, holder: string) {
    super(
      `static IP ${ip} is already held by ${holder}; choose another address or delete that pod first`,
      1001,
    );
    this.name = 'StaticIPConflictError';
  }
}

/** A requested static IP is outside every pool of the request (or not a usable address of it). */
export class StaticIPOutOfPoolError extends IpamError {
  constructor(ip: string, pools: string) {
    super(
      `static IP ${ip} is not a usable address of any requested pool (${pools}); pick an address inside one of them`,
      7,
    );
    this.name = 'StaticIPOutOfPoolError';
  }
}

/** The ClusterNetwork does not let pods of this namespace choose an address of the pool. */
export class StaticIPNotAllowedError extends IpamError {
  constructor(ip: string, namespace: string, pool: string, field: string) {
    super(
      `static IP ${ip} refused: pool ${pool} does not allow static addresses for namespace ${namespace}; ` +
        `add it to ClusterNetwork ${field}, or drop the address and let IPAM allocate one`,
      7,
    );
    this.name = 'StaticIPNotAllowedError';
  }
}

/** A static IP whose block no node holds: taking it would claim a whole block for one address. */
export class StaticIPUnclaimedBlockError extends IpamError {
  constructor(ip: string, block: string, pool: string) {
    super(
      `static IP ${ip} refused: its block ${block} of pool ${pool} is held by no node, and a static address ` +
        `never claims a block; choose an address in a block a node holds (kubectl get ipblocks)`,
      11,
    );
    this.name = 'StaticIPUnclaimedBlockError';
  }
}

/** The request names a pool the ClusterNetwork does not have, or none matches this node. */
export class UnknownPoolError extends IpamError {
  constructor(message: string) {
    super(message, 7);
    this.name = 'UnknownPoolError';
  }
}
