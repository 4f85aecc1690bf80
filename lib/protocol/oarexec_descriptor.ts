/**
 * The oarexec job descriptor: bipbip → oarexec, JSON on stdin (docs/modules.md §4.3 step 7; both
 * ends are ours, docs/differences.md).
 */
import { fail, ok, type Parsed, parseJsonObject } from "./common.ts";

/**
 * The limits of a descriptor, the same for whoever writes one (oarsub refuses a command that
 * would break them, lib/cli/oarsub.ts) and for oarexec reading it: a job's command once made
 * oarexec refuse its descriptor (64 KiB here, 16 MiB there), which suspected the node.
 */
/** The whole descriptor, resources included. */
export const DESCRIPTOR_MAX_BYTES = 16 * 1024 * 1024;
/** Everything but the resource list: the command, names, paths, scripts. */
export const DESCRIPTOR_HEAD_MAX_BYTES = 256 * 1024;
/** A job's command (its text, as oarsub stores it): half the head, the rest for the others. */
export const JOB_COMMAND_MAX_BYTES = 128 * 1024;

export interface OarexecDescriptor {
  job_id: number;
  array_id: number;
  array_index: number;
  stdout_file: string;
  stderr_file: string;
  launching_directory: string;
  job_env: string | null;
  node_file_db_fields: string;
  node_file_db_fields_distinct_values: string;
  user: string;
  job_user: string;
  types: Record<string, unknown>;
  name: string | null;
  project: string;
  reservation: string;
  walltime_seconds: number;
  command: string;
  challenge: string;
  almighty_hostname: string;
  almighty_port: number;
  checkpoint_signal: number;
  debug_mode: number;
  mode: "PASSIVE" | "INTERACTIVE";
  pro_epi_timeout: number;
  prologue: string;
  epilogue: string;
  tmp_directory: string;
  detach_oarexec: number;
  cpuset_full_path: string;
  /** Every column of each assigned resource. */
  resources: Record<string, unknown>[];
  /**
   * Seconds oarexec waits for the proxy's acknowledgement of its report before sending it
   * again (OAREXEC_REPORT_ACK_TIMEOUT); absent: REPORT_ACK_TIMEOUT_DEFAULT.
   */
  report_ack_timeout?: number;
}

const DESCRIPTOR_STRINGS = [
  "stdout_file",
  "stderr_file",
  "launching_directory",
  "node_file_db_fields",
  "node_file_db_fields_distinct_values",
  "user",
  "job_user",
  "project",
  "reservation",
  "command",
  "challenge",
  "almighty_hostname",
  "prologue",
  "epilogue",
  "tmp_directory",
  "cpuset_full_path",
] as const;
const DESCRIPTOR_INTS = [
  "job_id",
  "array_id",
  "array_index",
  "walltime_seconds",
  "almighty_port",
  "checkpoint_signal",
  "debug_mode",
  "pro_epi_timeout",
  "detach_oarexec",
] as const;

export function encodeOarexecDescriptor(d: OarexecDescriptor): string {
  return JSON.stringify(d);
}

/** Validates a descriptor read by oarexec; a bad one is oarexec's exit 31. */
export function parseOarexecDescriptor(input: Uint8Array | string): Parsed<OarexecDescriptor> {
  const r = parseJsonObject(input, DESCRIPTOR_HEAD_MAX_BYTES);
  if (!r.ok) return r;
  const d = r.value;
  for (const k of DESCRIPTOR_INTS) {
    if (typeof d[k] !== "number" || !Number.isSafeInteger(d[k])) {
      return fail(`descriptor: "${k}" must be an integer`);
    }
  }
  for (const k of DESCRIPTOR_STRINGS) {
    if (typeof d[k] !== "string") return fail(`descriptor: "${k}" must be a string`);
  }
  if (d.mode !== "PASSIVE" && d.mode !== "INTERACTIVE") {
    return fail('descriptor: "mode" must be PASSIVE or INTERACTIVE');
  }
  if (d.job_env !== null && typeof d.job_env !== "string") {
    return fail('descriptor: "job_env" must be a string or null');
  }
  if (d.name !== null && typeof d.name !== "string") {
    return fail('descriptor: "name" must be a string or null');
  }
  if (d.types === null || typeof d.types !== "object" || Array.isArray(d.types)) {
    return fail('descriptor: "types" must be an object');
  }
  if (!Array.isArray(d.resources) || !d.resources.every((x) => x && typeof x === "object")) {
    return fail('descriptor: "resources" must be a list of objects');
  }
  const ackTimeout = d.report_ack_timeout;
  if (
    ackTimeout !== undefined &&
    !(typeof ackTimeout === "number" && Number.isSafeInteger(ackTimeout) && ackTimeout > 0)
  ) return fail('descriptor: "report_ack_timeout" must be a positive integer');
  return ok(d as unknown as OarexecDescriptor);
}
