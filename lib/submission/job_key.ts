/**
 * Each job's ssh key pair (stored in `challenges`, installed on the nodes by the job's cpuset
 * setup so that oarsh can reach them): a fresh ed25519 pair from ssh-keygen in a private
 * temporary directory, removed at once.
 */
import { SubmissionError } from "./checks.ts";

export interface KeyPair {
  privateKey: string;
  publicKey: string;
}

export async function generateKeyPair(): Promise<KeyPair> {
  const dir = await Deno.makeTempDir({ prefix: "oarsub-key-" });
  try {
    const file = `${dir}/jobkey`;
    let out: Deno.CommandOutput;
    try {
      out = await new Deno.Command("ssh-keygen", {
        args: ["-q", "-t", "ed25519", "-N", "", "-C", "oar-job-key", "-f", file],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
    } catch (e) {
      throw new SubmissionError(`Job key generation failed: ${(e as Error).message}`, -14);
    }
    if (!out.success) {
      const err = new TextDecoder().decode(out.stderr).trim();
      throw new SubmissionError(`Job key generation failed: ${err || `exit ${out.code}`}`, -14);
    }
    const privateKey = await Deno.readTextFile(file);
    const publicKey = (await Deno.readTextFile(`${file}.pub`)).replace(/\n/g, "");
    return { privateKey, publicKey };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** OAR's challenge: a random number in 1..10^12, as text. */
export function newChallenge(): string {
  const buf = new Uint32Array(2);
  crypto.getRandomValues(buf);
  const n = (BigInt(buf[0]) << 32n | BigInt(buf[1])) % 1_000_000_000_000n + 1n;
  return n.toString();
}
