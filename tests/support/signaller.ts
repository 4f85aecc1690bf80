/**
 * An OarexecSignaller standing in for ssh to compute nodes in in-process watchdog tests: it
 * records what would be signalled and answers with `error` (null: delivered). The real
 * signallers over both launchers are tested in tests/watchdogs_cli_test.ts.
 */
import type { OarexecSignal, OarexecSignaller } from "../../lib/launch/oarexec_signal.ts";

export class RecordingSignaller implements OarexecSignaller {
  readonly calls: [string, number, OarexecSignal][] = [];
  constructor(readonly error: string | null = null) {}
  signal(host: string, jobId: number, sig: OarexecSignal): Promise<string | null> {
    this.calls.push([host, jobId, sig]);
    return Promise.resolve(this.error);
  }
}
