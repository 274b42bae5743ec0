// The agent's learned-route mirror (src/dataplane/route-mirror.ts) alone, for the BGP benchmark and
// the dual-stack speaker e2e (started by startRouteMirror in route-mirror.ts beside this file):
// run inside a node's netns, it copies BIRD's table into main with our protocol number, exactly
// as the agent does, through the same data-plane spawner. Prints "ready" once synced.
import { useSpawner } from '../../src/dataplane/exec.ts';
import { LearnedRouteMirror } from '../../src/dataplane/route-mirror.ts';

const stopSpawner = useSpawner();
const mirror = new LearnedRouteMirror(Number(process.argv[2]), {
  warn: (obj, msg) => process.stderr.write(`${msg} ${JSON.stringify(obj)}\n`),
});
await mirror.start();
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  mirror.stop();
  stopSpawner();
  process.exit(0);
});
