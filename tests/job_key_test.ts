/** Job keys made in process: OpenSSH reads them as it reads its own. */
import { assertEquals, assertStringIncludes } from "./support/assert.ts";
import { generateKeyPair } from "../lib/submission/job_key.ts";

Deno.test("job keys: ssh-keygen derives the same public key from the private key", async () => {
  const dir = await Deno.makeTempDir({ prefix: "oar-jobkey-" });
  try {
    const seen = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const k = await generateKeyPair();
      assertStringIncludes(k.privateKey, "-----BEGIN OPENSSH PRIVATE KEY-----\n");
      assertEquals(seen.has(k.publicKey), false);
      seen.add(k.publicKey);
      const file = `${dir}/key${i}`;
      await Deno.writeTextFile(file, k.privateKey, { mode: 0o600 });
      await Deno.chmod(file, 0o600);
      const out = await new Deno.Command("ssh-keygen", {
        args: ["-y", "-f", file],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
      assertEquals(new TextDecoder().decode(out.stdout).trim(), k.publicKey);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
