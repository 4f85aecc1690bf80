/**
 * The request a command body serves. A command's privileged part runs inside the command server
 * (modules/command_server/), many requests at once in one process: what the body prints goes to
 * its own caller, it acts as the caller the kernel named, and it reads the caller's files from
 * the request, never from the server's disk. An AsyncLocalStorage carries that per request
 * through every await, so the command bodies print and ask "who?" the same way whether they run
 * for one request in the server or in a process of their own (tests, admins holding the keys).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { CliContext } from "./context.ts";

export interface RequestScope {
  /** The user the request acts as (the kernel's peer, or OARDO_USER for root and oar). */
  user: string;
  /** The caller's working directory, host name, and oarsub -I/-r's host:port. */
  cwd: string;
  hostname: string;
  infoType: string | null;
  /** Files the caller read with its own rights, by the path given on its command line. */
  files: Record<string, string | null>;
  out(line: string): void;
  err(line: string): void;
  /** The server's shared configuration, database pool, log and notifier. */
  context: CliContext;
  /** What the body hands back to the command's user side (oarsub's job ids ...). */
  result?: unknown;
}

const storage = new AsyncLocalStorage<RequestScope>();
let serving = false;

/** Runs `fn` for one request. */
export function withScope<T>(scope: RequestScope, fn: () => Promise<T>): Promise<T> {
  return storage.run(scope, fn);
}

/**
 * The command server calls this once: from then on, code that asks for the request outside of
 * one fails instead of falling back on the server's own identity (root or oar, an admin).
 */
export function enterServerMode(): void {
  serving = true;
}

export function currentScope(): RequestScope | undefined {
  const s = storage.getStore();
  if (!s && serving) throw new Error("no request in scope in the command server");
  return s;
}

/** A line on the caller's stdout. */
export function out(line = ""): void {
  const s = currentScope();
  if (s) s.out(line);
  else console.log(line);
}

/** A line on the caller's stderr. */
export function errOut(line: string): void {
  const s = currentScope();
  if (s) s.err(line);
  else console.error(line);
}

/** A file the caller named: from the request in the server, from disk otherwise. */
export async function readCallerFile(path: string): Promise<string> {
  const s = currentScope();
  if (!s) return await Deno.readTextFile(path);
  const text = s.files[path];
  if (typeof text !== "string") throw new Deno.errors.NotFound(path);
  return text;
}

/** The caller's working directory. */
export function callerCwd(): string {
  return currentScope()?.cwd ?? Deno.cwd();
}

/** Hands a value back to the command's user side along with the exit code. */
export function setResult(value: unknown): void {
  const s = currentScope();
  if (s) s.result = value;
}
