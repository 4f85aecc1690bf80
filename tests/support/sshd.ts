/**
 * A real sshd on 127.0.0.1 for ssh-launcher tests: its own port, host key and client key in
 * `dir`, root login by key only, no change to /etc/ssh.
 */
import { join } from "node:path";
import { freePort } from "./ports.ts";
import { waitFor } from "./proc.ts";

export async function startSshd(
  dir: string,
): Promise<{ port: number; key: string; stop(): Promise<void> }> {
  const port = await freePort();
  const keygen = (file: string) =>
    new Deno.Command("ssh-keygen", {
      args: ["-q", "-t", "ed25519", "-N", "", "-f", file],
      stdout: "null",
      stderr: "null",
    }).output();
  await keygen(join(dir, "host_key"));
  await keygen(join(dir, "client_key"));
  await Deno.copyFile(join(dir, "client_key.pub"), join(dir, "authorized_keys"));
  // sshd's privilege separation directory.
  await Deno.mkdir("/run/sshd", { recursive: true, mode: 0o755 });
  await Deno.writeTextFile(
    join(dir, "sshd_config"),
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${join(dir, "host_key")}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "StrictModes no",
      `PidFile ${join(dir, "sshd.pid")}`,
    ].join("\n") + "\n",
  );
  const sshd = new Deno.Command("/usr/sbin/sshd", {
    args: ["-D", "-e", "-f", join(dir, "sshd_config")],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await waitFor("sshd to listen", async () => {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return true;
    } catch {
      return false;
    }
  });
  return {
    port,
    key: join(dir, "client_key"),
    async stop() {
      try {
        sshd.kill("SIGTERM");
      } catch { /* gone */ }
      await sshd.status;
    },
  };
}
