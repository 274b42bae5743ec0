/* The entry point of the operator, agent and probe images: runs the pinned Node on the bundle
 * named after this program (/usr/local/bin/trellis-agent -> /opt/trellis/lib/agent.mjs), passing
 * every argument on. A compiled launcher instead of a shell script because the operator image
 * carries no shell at all. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  const char *name = strrchr(argv[0], '/');
  name = name ? name + 1 : argv[0];
  if (strncmp(name, "trellis-", 8) == 0) name += 8;
  char script[256];
  if (snprintf(script, sizeof script, "/opt/trellis/lib/%s.mjs", name) >= (int)sizeof script) {
    fprintf(stderr, "trellis launcher: program name too long: %s\n", argv[0]);
    return 127;
  }
  char **args = calloc((size_t)argc + 2, sizeof *args);
  if (!args) return 127;
  args[0] = "node";
  args[1] = script;
  for (int i = 1; i < argc; i++) args[i + 1] = argv[i];
  execv("/usr/local/bin/node", args);
  perror("trellis launcher: exec /usr/local/bin/node");
  return 127;
}
