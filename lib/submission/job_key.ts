/**
 * Each job's ssh key pair (stored in `challenges`, installed on the nodes by the job's cpuset
 * setup so that oarsh can reach them): a fresh ed25519 pair, made in this process with WebCrypto
 * and written in OpenSSH's formats (the `openssh-key-v1` private key, unencrypted, and the
 * `ssh-ed25519` public line), as `ssh-keygen -t ed25519 -N ""` writes them. In process rather
 * than through ssh-keygen: a process start per submission was most of a submission's time.
 */
import { SubmissionError } from "./checks.ts";

export interface KeyPair {
  privateKey: string;
  publicKey: string;
}

const COMMENT = "oar-job-key";
const encoder = new TextEncoder();

/** SSH wire format: a uint32 length, then the bytes. */
function sshString(b: Uint8Array | string): Uint8Array {
  const bytes = typeof b === "string" ? encoder.encode(b) : b;
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length);
  out.set(bytes, 4);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function uint32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

function base64(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s);
}

function fromBase64Url(s: string): Uint8Array {
  const bin = atob(s.replaceAll("-", "+").replaceAll("_", "/"));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/** The OpenSSH texts of an ed25519 key given by its 32-byte seed and public key. */
export function openSshEd25519(seed: Uint8Array, pub: Uint8Array, check: number): KeyPair {
  const type = "ssh-ed25519";
  const pubBlob = concat([sshString(type), sshString(pub)]);
  const section = [
    uint32(check),
    uint32(check),
    sshString(type),
    sshString(pub),
    sshString(concat([seed, pub])),
    sshString(COMMENT),
  ];
  let length = section.reduce((n, p) => n + p.length, 0);
  const padding: number[] = [];
  for (let i = 1; length % 8 !== 0; i++, length++) padding.push(i);
  const body = concat([
    encoder.encode("openssh-key-v1\0"),
    sshString("none"),
    sshString("none"),
    sshString(""),
    uint32(1),
    sshString(pubBlob),
    sshString(concat([...section, Uint8Array.from(padding)])),
  ]);
  const lines = base64(body).match(/.{1,70}/g)!;
  return {
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join("\n")}\n` +
      `-----END OPENSSH PRIVATE KEY-----\n`,
    publicKey: `${type} ${base64(pubBlob)} ${COMMENT}`,
  };
}

export async function generateKeyPair(): Promise<KeyPair> {
  try {
    const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
      "sign",
      "verify",
    ]) as CryptoKeyPair;
    const jwk = await crypto.subtle.exportKey("jwk", pair.privateKey);
    const check = crypto.getRandomValues(new Uint32Array(1))[0];
    return openSshEd25519(fromBase64Url(jwk.d!), fromBase64Url(jwk.x!), check);
  } catch (e) {
    throw new SubmissionError(`Job key generation failed: ${(e as Error).message}`, -14);
  }
}

/** OAR's challenge: a random number in 1..10^12, as text. */
export function newChallenge(): string {
  const buf = new Uint32Array(2);
  crypto.getRandomValues(buf);
  const n = (BigInt(buf[0]) << 32n | BigInt(buf[1])) % 1_000_000_000_000n + 1n;
  return n.toString();
}
