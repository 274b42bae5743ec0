// nftables: whole-table replacement in one `nft -f` transaction, so a table is never seen half
// programmed and re-applying the same text is a no-op for traffic (conntrack state survives).
import { run, runResult } from './exec.ts';

export type NftFamily = 'ip' | 'ip6' | 'inet';

/** Replaces (or creates) one table atomically with the given body (chains, sets, rules). */
export async function replaceTable(family: NftFamily, name: string, body: string): Promise<void> {
  const script = [
    `table ${family} ${name} {}`,
    `delete table ${family} ${name}`,
    `table ${family} ${name} {`,
    body,
    '}',
    '',
  ].join('\n');
  await run('nft', ['-f', '-'], script);
}

export async function deleteTable(family: NftFamily, name: string): Promise<void> {
  await runResult('nft', ['delete', 'table', family, name]);
}

/** Runs one nft script as one transaction (`nft -f -`, script on stdin): all of it or none. */
export async function applyNftScript(script: string): Promise<void> {
  await run('nft', ['-f', '-'], script);
}
