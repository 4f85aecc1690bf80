/**
 * A cluster in a box: N compute hosts on this machine, each a network namespace joined to the
 * root namespace by a veth pair and running its own sshd (private config, keys in the
 * cluster's directory; /etc/ssh is not touched). The server stays in the root namespace and
 * reaches the hosts with the ssh launcher; the hosts reach the server at the root side of the
 * first host's link (every namespace routes through its own link, and the root namespace
 * answers for all of its addresses). Namespaces share this machine's filesystem and process
 * table, so oarexec from this tree runs on a host as it is.
 *
 * Every name made carries a random prefix (parallel clusters never collide) and is recorded in
 * `<dir>/cluster.json`, from which `clusterDown` removes namespaces, links, sshds, job
 * processes and the directory, whatever state a failed test left them in.
 */
import { joinPath } from "../../lib/runtime/paths.ts";

export const SSH_PORT = 6667;
const STATE_FILE = "cluster.json";
const SSHD = "/usr/sbin/sshd";
const SSH = "/usr/bin/ssh";
/** One /30 per host inside a /24: 63 hosts at most. */
const MAX_HOSTS = 63;

export interface ClusterHost {
  /** 1-based. */
  index: number;
  /** The host's name for OAR (network_address): its address, which needs no resolver. */
  name: string;
  netns: string;
  /** Address of the namespace side of the link. */
  ip: string;
  /** Address of the root side of the link (the namespace's default gateway). */
  gateway: string;
  /** Root-side interface name (the namespace side goes with the namespace). */
  link: string;
  sshdConfig: string;
  sshdPidFile: string;
}

export interface ClusterInfo {
  version: 1;
  prefix: string;
  dir: string;
  /** The directory was made by clusterUp (and is removed by clusterDown). */
  ownsDir: boolean;
  sshPort: number;
  /** Private key the server logs in with (root on every host). */
  clientKey: string;
  /** Where the hosts reach the server (SERVER_HOSTNAME). */
  serverAddress: string;
  cores: number;
  hosts: ClusterHost[];
  /** An oar.conf that `cluster:up --conf` added the cluster's keys to (see server.ts). */
  confFile?: string;
}

export interface UpOptions {
  hosts: number;
  cores: number;
  /** Directory for keys, configs and state; a fresh temporary one when absent. */
  dir?: string;
  sshPort?: number;
}

// ---------------------------------------------------------------------------------------------
// commands

interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

async function exec(program: string, args: string[]): Promise<Output> {
  const out = await new Deno.Command(program, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

async function must(program: string, args: string[]): Promise<string> {
  const r = await exec(program, args);
  if (r.code !== 0) {
    throw new Error(`${program} ${args.join(" ")}: exit ${r.code}: ${r.stderr.trim()}`);
  }
  return r.stdout;
}

const ip = (...args: string[]) => must("ip", args);

// ---------------------------------------------------------------------------------------------
// availability

/** Why a cluster cannot be built here (not root, no iproute2, no sshd...), or null. */
export async function unavailableReason(): Promise<string | null> {
  if (Deno.build.os !== "linux") return "network namespaces need Linux";
  if (Deno.uid() !== 0) return "network namespaces need root (run as root)";
  for (const p of [SSHD, SSH, "/usr/bin/ssh-keygen"]) {
    try {
      await Deno.stat(p);
    } catch {
      return `${p} is missing (install openssh-server and openssh-client)`;
    }
  }
  const probe = `ocprobe${randomHex(4)}`;
  let r: Output;
  try {
    r = await exec("ip", ["netns", "add", probe]);
  } catch {
    return "the ip command (iproute2) is missing";
  }
  if (r.code !== 0) return `ip netns add fails here: ${r.stderr.trim()}`;
  await exec("ip", ["netns", "del", probe]);
  return null;
}

// ---------------------------------------------------------------------------------------------
// up

function randomHex(n: number): string {
  const b = crypto.getRandomValues(new Uint8Array(Math.ceil(n / 2)));
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("").slice(0, n);
}

/** A 10.a.b.0/24 that no address or route of this machine touches. */
async function freeSubnet(): Promise<string> {
  const used = (await ip("-4", "-o", "addr", "show")) +
    (await ip("-4", "route", "show", "table", "all"));
  for (let i = 0; i < 200; i++) {
    const a = 100 + Math.floor(Math.random() * 150);
    const b = Math.floor(Math.random() * 256);
    const net = `10.${a}.${b}.`;
    if (!used.includes(net) && !used.includes(`10.${a}.0.0/16`) && !used.includes(`10.0.0.0/8`)) {
      return net;
    }
  }
  throw new Error("no free 10.x.y.0/24 subnet");
}

async function keygen(file: string): Promise<void> {
  await must("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "oar-cluster", "-f", file]);
}

function sshdConfig(info: ClusterInfo, h: ClusterHost): string {
  return [
    `Port ${info.sshPort}`,
    `ListenAddress ${h.ip}`,
    `HostKey ${joinPath(info.dir, "host_key")}`,
    `AuthorizedKeysFile ${joinPath(info.dir, "authorized_keys")}`,
    `PidFile ${h.sshdPidFile}`,
    "PermitRootLogin prohibit-password",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "UsePAM no",
    // The cluster directory is a temporary one; its modes are not sshd's business.
    "StrictModes no",
    "UseDNS no",
    "PrintMotd no",
    // Many jobs may start at once: do not drop concurrent unauthenticated connections early.
    "MaxStartups 200:30:400",
    "MaxSessions 100",
    "LogLevel ERROR",
  ].join("\n") + "\n";
}

/** Builds the cluster; on any failure removes what it made and throws. */
export async function clusterUp(opts: UpOptions): Promise<ClusterInfo> {
  if (!Number.isInteger(opts.hosts) || opts.hosts < 1 || opts.hosts > MAX_HOSTS) {
    throw new Error(`hosts: 1 to ${MAX_HOSTS}`);
  }
  if (!Number.isInteger(opts.cores) || opts.cores < 1) throw new Error("cores: at least 1");
  let ownsDir = opts.dir === undefined;
  const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "oar-cluster-" });
  if (!ownsDir) {
    try {
      await Deno.stat(dir);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      await Deno.mkdir(dir, { recursive: true });
      // Made here, so removed by clusterDown (a parent made along is left alone).
      ownsDir = true;
    }
  }
  try {
    await Deno.stat(joinPath(dir, STATE_FILE));
    throw new Error(`${dir} already holds a cluster (${STATE_FILE}); take it down first`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const prefix = `oc${randomHex(6)}`;
  const net = await freeSubnet();
  const hosts: ClusterHost[] = [];
  for (let i = 1; i <= opts.hosts; i++) {
    const base = 4 * (i - 1);
    hosts.push({
      index: i,
      name: `${net}${base + 2}`,
      netns: `${prefix}-h${i}`,
      ip: `${net}${base + 2}`,
      gateway: `${net}${base + 1}`,
      link: `${prefix}r${i}`,
      sshdConfig: joinPath(dir, `sshd_config.${i}`),
      sshdPidFile: joinPath(dir, `sshd.${i}.pid`),
    });
  }
  const info: ClusterInfo = {
    version: 1,
    prefix,
    dir,
    ownsDir,
    sshPort: opts.sshPort ?? SSH_PORT,
    clientKey: joinPath(dir, "client_key"),
    serverAddress: hosts[0].gateway,
    cores: opts.cores,
    hosts,
  };
  // Recorded first, so that a failure at any later point can be undone from the file.
  await Deno.writeTextFile(joinPath(dir, STATE_FILE), JSON.stringify(info, null, 2) + "\n");
  try {
    await keygen(joinPath(dir, "host_key"));
    await keygen(info.clientKey);
    await Deno.copyFile(`${info.clientKey}.pub`, joinPath(dir, "authorized_keys"));
    // sshd's privilege separation directory (normally made by its service unit).
    await Deno.mkdir("/run/sshd", { recursive: true, mode: 0o755 });
    for (const h of hosts) {
      const peer = `${prefix}p${h.index}`;
      await ip("netns", "add", h.netns);
      await ip("link", "add", h.link, "type", "veth", "peer", "name", peer);
      await ip("link", "set", peer, "netns", h.netns);
      await ip("addr", "add", `${h.gateway}/30`, "dev", h.link);
      await ip("link", "set", h.link, "up");
      await ip("-n", h.netns, "link", "set", "lo", "up");
      await ip("-n", h.netns, "link", "set", peer, "name", "eth0");
      await ip("-n", h.netns, "addr", "add", `${h.ip}/30`, "dev", "eth0");
      await ip("-n", h.netns, "link", "set", "eth0", "up");
      await ip("-n", h.netns, "route", "add", "default", "via", h.gateway);
      await Deno.writeTextFile(h.sshdConfig, sshdConfig(info, h));
    }
    await Promise.all(hosts.map((h) => startSshd(info, h)));
    return info;
  } catch (e) {
    await clusterDown(info).catch(() => {});
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// sshd of one host

async function listening(host: string, port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: host, port })).close();
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(what: string, probe: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  let delay = 5;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 100);
  }
}

/** Starts the host's sshd (it detaches; its pid goes to its PidFile) and waits until it answers. */
export async function startSshd(info: ClusterInfo, h: ClusterHost): Promise<void> {
  await must("ip", ["netns", "exec", h.netns, SSHD, "-f", h.sshdConfig]);
  await waitUntil(`sshd on ${h.name}`, () => listening(h.ip, info.sshPort), 10_000);
}

async function sshdPid(h: ClusterHost): Promise<number | null> {
  try {
    const pid = Number((await Deno.readTextFile(h.sshdPidFile)).trim());
    return Number.isInteger(pid) && pid > 1 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Kills the host's sshd (its listener; sessions already open and the jobs they started live
 * on) and waits until the port refuses connections.
 */
export async function killSshd(info: ClusterInfo, h: ClusterHost): Promise<void> {
  const pid = await sshdPid(h);
  if (pid === null) throw new Error(`no sshd pid for ${h.name}`);
  try {
    Deno.kill(pid, "SIGKILL");
  } catch { /* already gone */ }
  await Deno.remove(h.sshdPidFile).catch(() => {});
  await waitUntil(
    `sshd on ${h.name} to stop`,
    async () => !(await listening(h.ip, info.sshPort)),
    10_000,
  );
}

// ---------------------------------------------------------------------------------------------
// down

/** Processes whose network namespace is `netns` (sshd, oarexec, jobs). */
async function namespacePids(netns: string): Promise<number[]> {
  const r = await exec("ip", ["netns", "pids", netns]);
  if (r.code !== 0) return [];
  return r.stdout.split(/\s+/).filter((w) => /^\d+$/.test(w)).map(Number);
}

async function killNamespace(netns: string): Promise<void> {
  // A process forking while we kill may leave a child: go round until none is left.
  for (let round = 0; round < 20; round++) {
    const pids = await namespacePids(netns);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function linkExists(name: string): Promise<boolean> {
  return (await exec("ip", ["link", "show", "dev", name])).code === 0;
}

async function netnsExists(name: string): Promise<boolean> {
  const r = await exec("ip", ["netns", "list"]);
  return r.stdout.split("\n").some((l) => l.split(" ")[0] === name);
}

/**
 * Removes everything `info` names: every process in the hosts' namespaces, the namespaces
 * (their ends of the links go with them), the root ends of the links, and the directory if
 * clusterUp made it. Errors are collected and thrown at the end, after every step was tried.
 */
export async function clusterDown(info: ClusterInfo): Promise<void> {
  const errors: string[] = [];
  for (const h of info.hosts) {
    try {
      if (await netnsExists(h.netns)) {
        await killNamespace(h.netns);
        const r = await exec("ip", ["netns", "del", h.netns]);
        if (r.code !== 0) errors.push(`ip netns del ${h.netns}: ${r.stderr.trim()}`);
      }
      // The kernel removes a deleted namespace's links a little later: give it a moment
      // before deleting the root end ourselves (a namespace that was never made has none).
      await waitUntil(`${h.link} to go`, async () => !(await linkExists(h.link)), 2000)
        .catch(() => {});
      if (await linkExists(h.link)) {
        const r = await exec("ip", ["link", "del", h.link]);
        if (r.code !== 0 && await linkExists(h.link)) {
          errors.push(`ip link del ${h.link}: ${r.stderr.trim()}`);
        }
      }
    } catch (e) {
      errors.push(String(e));
    }
  }
  try {
    if (info.ownsDir) await Deno.remove(info.dir, { recursive: true });
    else await Deno.remove(joinPath(info.dir, STATE_FILE));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) errors.push(String(e));
  }
  if (errors.length) throw new Error(`cluster ${info.prefix} teardown: ${errors.join("; ")}`);
}

/** Rewrites the record of the cluster (after `info` gained a field). */
export async function saveCluster(info: ClusterInfo): Promise<void> {
  await Deno.writeTextFile(joinPath(info.dir, STATE_FILE), JSON.stringify(info, null, 2) + "\n");
}

/** The cluster recorded in `dir`. */
export async function readCluster(dir: string): Promise<ClusterInfo> {
  const info = JSON.parse(await Deno.readTextFile(joinPath(dir, STATE_FILE))) as ClusterInfo;
  if (info.version !== 1 || !/^oc[0-9a-f]{6}$/.test(info.prefix)) {
    throw new Error(`${dir}/${STATE_FILE} is not a cluster record`);
  }
  return info;
}

/** What is left on this machine of the cluster (namespaces, links): empty once it is down. */
export async function leftovers(info: ClusterInfo): Promise<string[]> {
  const left: string[] = [];
  for (const h of info.hosts) {
    if (await netnsExists(h.netns)) left.push(`netns ${h.netns}`);
    if (await linkExists(h.link)) left.push(`link ${h.link}`);
  }
  return left;
}

// ---------------------------------------------------------------------------------------------
// what the server needs

/** OPENSSH_CMD for this cluster (the launcher adds -x -T, BatchMode and ConnectTimeout). */
export function openSshCmd(info: ClusterInfo): string {
  return [
    SSH,
    "-p",
    String(info.sshPort),
    "-i",
    info.clientKey,
    "-F",
    "/dev/null",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
  ].join(" ");
}

/** Quoting for the remote login shell. */
export function shellWord(w: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replaceAll("'", `'\\''`)}'`;
}
