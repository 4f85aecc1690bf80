/**
 * oarexec's entry (docs/modules.md §4.5), run on the job's head node by a launcher (lib/launch/):
 *
 *   oarexec             reads the descriptor on stdin; with detach_oarexec=1 it starts
 *                       `oarexec --detached` in a session of its own, hands it the descriptor,
 *                       relays its output up to the rendezvous line, and exits (this is what
 *                       an ssh session runs: it ends as soon as the job is started);
 *   oarexec --detached  already in its own session (the local launcher starts it through
 *                       setsid): does the job, prints the rendezvous line and stops using its
 *                       stdio.
 *
 * Exits before the rendezvous carry oarexec's code (1, 5, 7, 8, 30, 31), which the launcher
 * passes to bipbip; later ones are reported over TCP.
 */
import { Config, loadConfig } from "../../lib/runtime/config.ts";
import { privilegedAccountRefusal } from "../../lib/exec/system_users.ts";
import { readDescriptor } from "./descriptor_input.ts";
import { OarexecLog } from "../../lib/exec/log.ts";
import { runOarexec } from "../../lib/exec/run.ts";
import { runInteractiveOarexec } from "./interactive.ts";
import { spawnDetachedOarexec } from "../../lib/exec/oarexec_command.ts";
import { serveAgent } from "./agent.ts";
import { agentSocketPath } from "../../lib/exec/agent_path.ts";
import { dirname } from "node:path";

/** The reference hard-codes this transfer limit (BIPBIP_OAREXEC_HASHTABLE_SEND_TIMEOUT). */
const DESCRIPTOR_TIMEOUT_MS = 30_000;
const DEFAULT_RENDEZVOUS = "oarexec is initialized and ready to do the job";

function nodeConfig(): Config | null {
  try {
    return loadConfig();
  } catch {
    return null;
  }
}

export async function oarexecMain(args: string[]): Promise<number> {
  const detached = args.includes("--detached");
  const config = nodeConfig();
  const rendezvous = config?.str("SSH_RENDEZ_VOUS") || DEFAULT_RENDEZVOUS;
  if (args.includes("--serve")) return await serve(config ?? new Config(), rendezvous);
  const early = new OarexecLog("?");
  const read = await readDescriptor(Deno.stdin.readable, DESCRIPTOR_TIMEOUT_MS);
  if (!read.ok) {
    early.info(read.error);
    return read.code;
  }
  const d = read.descriptor;
  const log = new OarexecLog(d.job_id);
  if (d.mode === "INTERACTIVE") {
    // The job is the user's shell (modules/oarexec/interactive.ts); detached the same way.
    if (!detached && d.detach_oarexec === 1) return await relayDetached(read.text, rendezvous, log);
    return await runInteractiveOarexec(d, {
      refuseAccount: (a) => privilegedAccountRefusal(a, config ?? new Config()),
      log,
      rendezvous: async () => {
        await writeAll(Deno.stdout, rendezvous + "\n");
      },
      detach: () => closeStdio(),
    });
  }
  if (!detached && d.detach_oarexec === 1) return await relayDetached(read.text, rendezvous, log);
  const nodeConf = config ?? new Config();
  return await runOarexec(d, {
    refuseAccount: (a) => privilegedAccountRefusal(a, nodeConf),
    log,
    rendezvous: async () => {
      await writeAll(Deno.stdout, rendezvous + "\n");
    },
    detach: () => closeStdio(),
  });
}

async function writeAll(w: { write(b: Uint8Array): Promise<number> }, text: string) {
  const bytes = new TextEncoder().encode(text);
  let n = 0;
  while (n < bytes.byteLength) n += await w.write(bytes.subarray(n));
}

/**
 * Nothing is written to stdio again after the rendezvous. (Deno drops its handles but keeps
 * the descriptors 0-2 open: the launcher stops reading at the rendezvous line, and under ssh
 * the relay, whose exit is what ends the session, is the only holder of the session's pipes.)
 */
function closeStdio(): void {
  for (const s of [Deno.stdin, Deno.stdout, Deno.stderr]) {
    try {
      s.close();
    } catch { /* already closed */ }
  }
}

/**
 * Starts `oarexec --detached` in a new session with the same descriptor and waits for its
 * rendezvous line (printed on, then exit 0) or its early exit (whose code is ours).
 */
async function relayDetached(text: string, rendezvous: string, log: OarexecLog): Promise<number> {
  let child: Deno.ChildProcess;
  try {
    child = spawnDetachedOarexec(nodeConfigOrDefault());
  } catch (e) {
    log.info(`cannot start the detached oarexec: ${e}`);
    return 31;
  }
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(text)).catch(() => {});
  await w.close().catch(() => {});
  // stderr lines go up to the launcher's log as they come.
  const relayErr = (async () => {
    try {
      for await (const chunk of child.stderr) await Deno.stderr.write(chunk);
    } catch { /* closed */ }
  })();
  const decoder = new TextDecoder();
  let pending = "";
  let met = false;
  try {
    for await (const chunk of child.stdout) {
      pending += decoder.decode(chunk, { stream: true });
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      if (lines.some((l) => l === rendezvous)) {
        met = true;
        break;
      }
    }
  } catch { /* closed */ }
  if (met) {
    await writeAll(Deno.stdout, rendezvous + "\n");
    child.unref();
    return 0;
  }
  const status = await child.status;
  await relayErr;
  return status.code;
}

const AGENT_IGNORED_SIGNALS: Deno.Signal[] = [
  "SIGTERM",
  "SIGINT",
  "SIGQUIT",
  "SIGHUP",
  "SIGUSR2",
  "SIGURG",
  "SIGTSTP",
  "SIGCONT",
];

/**
 * The local agent (modules/oarexec/agent.ts), started in its own session by the local launcher:
 * `ready` on stdout once it listens (or once it found another agent listening), then no stdio.
 */
async function serve(config: Config, rendezvous: string): Promise<number> {
  const socketPath = agentSocketPath(config);
  try {
    Deno.mkdirSync(dirname(socketPath), { recursive: true });
  } catch { /* the bind below says what is wrong */ }
  // Signals meant for one job's oarexec reach it through the socket; a signal sent to the
  // agent's pid (a pid file read by an old script) must not end every job of the host.
  for (const sig of AGENT_IGNORED_SIGNALS) Deno.addSignalListener(sig, () => {});
  try {
    return await serveAgent({
      socketPath,
      idleMs: config.int("OAREXEC_AGENT_IDLE_TIME") * 1000,
      refuseAccount: (a) => privilegedAccountRefusal(a, config),
      rendezvous,
      onReady: () => {
        try {
          Deno.stdout.writeSync(new TextEncoder().encode("ready\n"));
        } catch { /* the starter left */ }
        closeStdio();
      },
    });
  } catch (e) {
    new OarexecLog("agent").info(`cannot serve on ${socketPath}: ${e}`);
    return 1;
  }
}

/** The node's configuration, or the defaults when it has none. */
function nodeConfigOrDefault(): Config {
  return nodeConfig() ?? new Config();
}
