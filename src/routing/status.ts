// Session state parsed back from `birdc show protocols all`: the speaker's own report, not a guess.
// Only BGP protocols are returned. Routes received/announced sum the channels' "imported" and
// "exported" counts. A session that is not established carries the speaker's last error as its
// reason, or, when the speaker has none yet, a hint naming what to check.
import type { BgpSession } from '../api/nodestatus.ts';

const HEADER = /^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+(?: \S+)?)\s*(.*)$/;

function hint(state: string): string {
  if (state === 'Idle' || state === 'Active' || state === 'Connect')
    return `no session yet (${state}): check that the peer is reachable at this address and configured with this node's address and AS, and that both sides use the same password if one is set`;
  return `session is ${state}`;
}

/** Parses the text of `show protocols all` into BGP sessions, in the speaker's order. */
export function parseBirdProtocols(text: string): BgpSession[] {
  const sessions: BgpSession[] = [];
  let cur: BgpSession | undefined;
  let info = '';
  const finish = (): void => {
    if (!cur) return;
    if (!cur.established && !cur.reason) cur.reason = info || hint(cur.state);
    sessions.push(cur);
    cur = undefined;
  };
  for (const line of text.split('\n')) {
    if (line.length === 0) continue;
    if (!line.startsWith(' ')) {
      finish();
      const m = HEADER.exec(line);
      if (!m || m[2] !== 'BGP') continue;
      // Since is "HH:MM:SS.mmm" or "YYYY-MM-DD HH:MM:SS" depending on age; Info follows it.
      const rest = line
        .slice(m.index + m[1]!.length)
        .trim()
        .split(/\s{2,}/);
      const since = rest[3] ?? '';
      info = (rest.slice(5).join(' ') || '').trim();
      cur = {
        name: m[1]!,
        state: rest[4]?.split(/\s+/)[0] ?? 'Unknown',
        established: false,
        since,
        routesReceived: 0,
        routesAnnounced: 0,
      };
      if (cur.name.startsWith('peer_')) cur.kind = 'peer';
      else if (cur.name.startsWith('mesh_')) cur.kind = 'mesh';
      continue;
    }
    if (!cur) continue;
    const t = line.trim();
    let m: RegExpExecArray | null;
    if ((m = /^BGP state:\s+(\S+)/.exec(t))) {
      cur.state = m[1]!;
      cur.established = m[1] === 'Established';
    } else if ((m = /^Neighbor address:\s+(\S+)/.exec(t))) cur.peerAddress = m[1]!;
    else if ((m = /^Neighbor AS:\s+(\d+)/.exec(t))) cur.peerAS = Number(m[1]);
    else if ((m = /^Last error:\s+(.+)$/.exec(t))) cur.reason = m[1]!.trim();
    else if ((m = /^Routes:\s+(\d+) imported, (?:(\d+) filtered, )?(\d+) exported/.exec(t))) {
      cur.routesReceived = (cur.routesReceived ?? 0) + Number(m[1]);
      cur.routesAnnounced = (cur.routesAnnounced ?? 0) + Number(m[3]);
    }
  }
  finish();
  return sessions;
}

/** "established/total" for the printer column. */
export function establishedCount(sessions: readonly BgpSession[]): string {
  return `${sessions.filter((s) => s.established).length}/${sessions.length}`;
}
