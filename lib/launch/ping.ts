/**
 * The built-in node check (docs/differences.md §2): a node answers when a TCP connection to its ssh
 * port opens within the deadline. Used by bipbip before a launch and at a job's end with the ssh
 * launcher.
 */

/** The port OPENSSH_CMD connects to: `-p N`, `-pN` or `-oPort=N`; 22 otherwise. */
export function sshPort(openSshCmd: string): number {
  const words = openSshCmd.trim().split(/\s+/);
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    let v: string | undefined;
    if (w === "-p") v = words[i + 1];
    else if (/^-p\d+$/.test(w)) v = w.slice(2);
    else if (/^-oPort=\d+$/i.test(w)) v = w.split("=")[1];
    else if (w === "-o" && /^Port=\d+$/i.test(words[i + 1] ?? "")) v = words[i + 1].split("=")[1];
    const n = Number(v);
    if (v !== undefined && Number.isInteger(n) && n > 0 && n < 65536) return n;
  }
  return 22;
}

async function answers(host: string, port: number, timeoutMs: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const connecting = Deno.connect({ hostname: host, port });
  try {
    const r = await Promise.race([
      connecting,
      new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs))),
    ]);
    if (r === null) {
      connecting.then((c) => c.close()).catch(() => {});
      return false;
    }
    r.close();
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** The hosts (of `hosts`) that do not answer, checked in parallel. */
export async function unreachableHosts(
  hosts: string[],
  port: number,
  timeoutMs: number,
): Promise<string[]> {
  const results = await Promise.all(hosts.map((h) => answers(h, port, timeoutMs)));
  return hosts.filter((_, i) => !results[i]);
}
