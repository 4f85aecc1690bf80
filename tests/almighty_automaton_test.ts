import { assertEquals } from "./support/assert.ts";
import {
  type Action,
  addCommand,
  type AlmightyState,
  type Automaton,
  DEFAULT_SETTINGS,
  initialAutomaton,
  type Input,
  type OneShotModule,
  step,
  timeUpdate,
} from "../modules/almighty/automaton.ts";

const at = (state: AlmightyState, extra: Partial<Automaton> = {}): Automaton => ({
  ...initialAutomaton(),
  state,
  ...extra,
});

/** One loop step from Qget with one received message, as the reference's test does. */
function afterMessage(cmd: string): AlmightyState {
  let r = step(at("Qget"), { kind: "continue" }, 1000);
  assertEquals(r.action, { kind: "receive", timeoutMs: 5000 });
  r = step(r.automaton, { kind: "received", cmd }, 1000);
  return r.automaton.state;
}

Deno.test("Qget: each command leads to its state (test_almighty_state_Qget)", () => {
  assertEquals(afterMessage("FOO"), "Qget");
  for (const c of ["Qsub", "Qsub -I", "Term", "BipBip", "Scheduling", "Qresume", "Walltime"]) {
    assertEquals(afterMessage(c), "Scheduler", c);
  }
  assertEquals(afterMessage("Qdel"), "Leon");
  assertEquals(afterMessage("Villains"), "Check for villains");
  assertEquals(afterMessage("Finaud"), "Check node states");
  assertEquals(afterMessage("Time"), "Time update");
  assertEquals(afterMessage("ChState"), "Change node state");
  assertEquals(afterMessage("Time update"), "Qget");
});

Deno.test("Qget: unknown commands are dropped with a note", () => {
  const r = step(at("Qget", { queue: ["rm -rf /"] }), { kind: "continue" }, 0);
  assertEquals(r.automaton.state, "Qget");
  assertEquals(r.automaton.queue, []);
  assertEquals(r.notes.length, 1);
});

Deno.test("a receive timeout is the synthetic Time command", () => {
  const r = step(at("Qget"), { kind: "received", cmd: null }, 0);
  assertEquals(r.automaton.state, "Time update");
});

Deno.test("Time is skipped when real work is queued", () => {
  const r = step(at("Qget", { queue: ["Time", "Qdel"] }), { kind: "continue" }, 0);
  assertEquals(r.automaton.state, "Leon");
  assertEquals(r.automaton.queue, []);
});

Deno.test("a run answers every command queued for its state before it starts", () => {
  // A batch of job ends sends ChState, Term and BipBip: NodeChangeState, then ONE round.
  let r = step(
    at("Qget", { queue: ["Term", "ChState", "BipBip", "Qsub", "Qdel", "Walltime"] }),
    { kind: "continue" },
    1000,
  );
  assertEquals(r.automaton.state, "Scheduler");
  r = step(r.automaton, { kind: "continue" }, 1000);
  assertEquals(r.action, { kind: "run", module: "meta_sched" });
  assertEquals(r.automaton.queue, ["ChState", "Qdel"]);
  // Commands sent during the round are queued with its exit code; a Term gets a round of its
  // own, and the ChState is answered by the NodeChangeState run that follows a round.
  r = step(
    r.automaton,
    { kind: "ran", module: "meta_sched", code: 0, more: ["Term", "ChState"] },
    1000,
  );
  assertEquals(r.automaton.queue, ["ChState", "Qdel", "Term"]);
  r = step(r.automaton, { kind: "continue" }, 1000);
  assertEquals(r.action, { kind: "run", module: "node_change_state" });
  assertEquals(r.automaton.queue, ["Qdel", "Term"]);
  // Too early for the Scheduler: nothing is dropped, the request is remembered.
  const early = step(
    at("Scheduler", { queue: ["Term"], lastScheduler: 100 }),
    { kind: "continue" },
    100,
    { ...DEFAULT_SETTINGS, minBetween: 5 },
  );
  assertEquals(early.automaton.queue, ["Term"]);
  assertEquals(early.automaton.schedulerWanted, true);
});

const RUNS: [AlmightyState, OneShotModule, AlmightyState][] = [
  ["Scheduler", "meta_sched", "Change node state"],
  ["Check for villains", "sarko", "Time update"],
  ["Check node states", "finaud", "Time update"],
  ["Leon", "leon", "Time update"],
  ["Change node state", "node_change_state", "Time update"],
];

Deno.test("each state runs its module; exit 0 transitions (test_almighty_state_called_command)", () => {
  for (const [state, module, after] of RUNS) {
    const r = step(at(state), { kind: "continue" }, 1000);
    assertEquals(r.action, { kind: "run", module } as Action, state);
    const r2 = step(r.automaton, { kind: "ran", module, code: 0 }, 1001);
    assertEquals(r2.automaton.state, after, state);
  }
});

function afterRun(
  module: OneShotModule,
  code: number,
  from: AlmightyState,
  a: Partial<Automaton> = {},
) {
  return step(at(from, a), { kind: "ran", module, code }, 1000).automaton;
}

Deno.test("meta-scheduler exit codes (test_almighty_state_called_command_with_exit_value)", () => {
  assertEquals(afterRun("meta_sched", 0, "Scheduler").state, "Change node state");
  assertEquals(afterRun("meta_sched", 1, "Scheduler").state, "Scheduler");
  assertEquals(afterRun("meta_sched", 2, "Scheduler").state, "Leon");
  assertEquals(afterRun("meta_sched", 0, "Scheduler").lastScheduler, 1000);
  const bad = afterRun("meta_sched", 3, "Scheduler");
  assertEquals(bad.finish, true);
  assertEquals(step(bad, { kind: "continue" }, 1000).action, { kind: "exit", code: 10 });
});

Deno.test("sarko, finaud, leon, node_change_state exit codes", () => {
  assertEquals(afterRun("sarko", 1, "Check for villains").state, "Leon");
  assertEquals(afterRun("sarko", 0, "Check for villains").lastVillains, 1000);
  assertEquals(afterRun("sarko", 5, "Check for villains").finish, true);
  assertEquals(afterRun("finaud", 1, "Check node states").state, "Change node state");
  assertEquals(afterRun("finaud", 0, "Check node states").lastCheckNodes, 1000);
  assertEquals(afterRun("finaud", 7, "Check node states").finish, true);
  const leon1 = afterRun("leon", 1, "Leon");
  assertEquals([leon1.state, leon1.queue], ["Time update", ["Term"]]);
  const leon3 = afterRun("leon", 3, "Leon");
  assertEquals([leon3.state, leon3.queue, leon3.finish], ["Time update", [], false]);
  assertEquals(afterRun("node_change_state", 1, "Change node state").state, "Scheduler");
  const ncs2 = afterRun("node_change_state", 2, "Change node state");
  assertEquals([ncs2.state, ncs2.queue], ["Leon", ["Term"]]);
  assertEquals(afterRun("node_change_state", 9, "Change node state").finish, true);
});

Deno.test("queue de-duplication (test_almighty_no_dup_command)", () => {
  assertEquals(addCommand(["foo_cmd"], "foo_cmd"), ["foo_cmd"]);
  // Exact string equality, even for regex metacharacters.
  assertEquals(addCommand(["a.c"], "abc"), ["a.c", "abc"]);
  const r = step(at("Qget", { queue: ["Qsub"] }), { kind: "received", cmd: "Qsub" }, 0);
  assertEquals(r.automaton.queue, []);
  assertEquals(r.automaton.state, "Scheduler");
});

Deno.test("scheduler too early sets scheduler_wanted (test_almighty_Scheduler_scheduler_wanted)", () => {
  const r = step(at("Scheduler"), { kind: "continue" }, 0);
  assertEquals(r.automaton.schedulerWanted, true);
  assertEquals(r.automaton.state, "Time update");
  assertEquals(r.action, { kind: "continue" });
  // Once min_between has passed, Time update enqueues Scheduling again.
  const later = timeUpdate(
    { ...r.automaton, lastVillains: 1e9, lastCheckNodes: 1e9 },
    5,
    DEFAULT_SETTINGS,
  );
  assertEquals(later.queue, ["Scheduling"]);
  const tooSoon = timeUpdate(
    { ...r.automaton, lastVillains: 1e9, lastCheckNodes: 1e9 },
    4,
    DEFAULT_SETTINGS,
  );
  assertEquals(tooSoon.queue, []);
});

Deno.test("time_update at 0 and at 1000 (test_almighty_time_update0 / test_almighty_time_update)", () => {
  assertEquals(timeUpdate(initialAutomaton(), 0, DEFAULT_SETTINGS).queue, []);
  assertEquals(timeUpdate(initialAutomaton(), 1000, DEFAULT_SETTINGS).queue, [
    "Scheduling",
    "Villains",
    "Finaud",
  ]);
  assertEquals(
    timeUpdate(initialAutomaton(), 1000, { ...DEFAULT_SETTINGS, finaudPeriod: 0 }).queue,
    ["Scheduling", "Villains"],
  );
});

Deno.test("a signal stops the automaton with exit 10 (test_almighty_finishTag)", () => {
  const r = step(at("Qget"), { kind: "signal" }, 0);
  assertEquals(r.action, { kind: "exit", code: 10 });
  // A signal during a module run: the run's outcome is recorded, then the next step exits.
  const running = step(at("Leon"), { kind: "continue" }, 0);
  const sig = step(running.automaton, { kind: "signal" }, 0);
  assertEquals(sig.action, { kind: "exit", code: 10 });
});

Deno.test("a whole scenario: Qsub at start-up runs the scheduler, node_change_state, then the villains", () => {
  let a = initialAutomaton();
  let input: Input = { kind: "received", cmd: "Qsub" };
  const ran: OneShotModule[] = [];
  let now = 1000;
  for (let i = 0; i < 20 && ran.length < 4; i++) {
    const r = step(a, input, now);
    a = r.automaton;
    if (r.action.kind === "run") {
      ran.push(r.action.module);
      input = { kind: "ran", module: r.action.module, code: 0 };
      now += 1;
    } else if (r.action.kind === "receive") {
      input = { kind: "received", cmd: null };
    } else input = { kind: "continue" };
  }
  // After the round, Time update finds sarko and finaud due (their clocks start at 0).
  assertEquals(ran, ["meta_sched", "node_change_state", "sarko", "finaud"]);
});

Deno.test("adaptive spacing: rounds are spaced by a multiple of the last one's cost, at most minBetween", () => {
  const s = { ...DEFAULT_SETTINGS, minBetween: 5, spacingFactor: 2 };
  // A round from t=100.0 to t=100.1: the next may start 0.2 s after its end.
  let r = step(at("Scheduler"), { kind: "continue" }, 100, s);
  assertEquals(r.action, { kind: "run", module: "meta_sched" } as Action);
  r = step(r.automaton, { kind: "ran", module: "meta_sched", code: 0 }, 100.1, s);
  assertEquals(r.automaton.schedulerCost > 0.099 && r.automaton.schedulerCost < 0.101, true);
  const early = step({ ...r.automaton, state: "Scheduler" }, { kind: "continue" }, 100.2, s);
  assertEquals(early.automaton.schedulerWanted, true);
  const due = step({ ...r.automaton, state: "Scheduler" }, { kind: "continue" }, 100.31, s);
  assertEquals(due.action, { kind: "run", module: "meta_sched" } as Action);
  // An expensive round (10 s) is followed by at most minBetween.
  const slow = { ...r.automaton, state: "Scheduler" as AlmightyState, schedulerCost: 10 };
  assertEquals(step(slow, { kind: "continue" }, 100.1 + 4.9, s).automaton.schedulerWanted, true);
  assertEquals(
    step(slow, { kind: "continue" }, 100.1 + 5, s).action,
    { kind: "run", module: "meta_sched" } as Action,
  );
  // 0: OAR's fixed spacing.
  const fixed = { ...s, spacingFactor: 0 };
  assertEquals(
    step({ ...r.automaton, state: "Scheduler" }, { kind: "continue" }, 104, fixed).automaton
      .schedulerWanted,
    true,
  );
});
