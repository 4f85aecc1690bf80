/** Timesharing keys: who may share with whom (`timesharing=user|*,name|*`). */
import { timesharingKey } from "../modules/meta_sched/kamelot/timesharing.ts";
import { assertEquals, assertOk } from "./support/assert.ts";

Deno.test("timesharing: keys are equal exactly for jobs allowed to share", () => {
  const key = (t: string, user: string, name: string | null) =>
    timesharingKey(["besteffort", t], user, name);
  assertEquals(timesharingKey(["besteffort"], "alice", "x"), null);
  // *,*: anyone's job, whatever its name.
  assertEquals(key("timesharing=*,*", "alice", "x"), key("timesharing=*,*", "bob", null));
  // user,*: same user only.
  assertEquals(key("timesharing=user,*", "alice", "x"), key("timesharing=user,*", "alice", "y"));
  assertOk(key("timesharing=user,*", "alice", "x") !== key("timesharing=user,*", "bob", "x"));
  // *,name: same name only, any user.
  assertEquals(key("timesharing=*,name", "alice", "x"), key("timesharing=*,name", "bob", "x"));
  assertOk(key("timesharing=*,name", "alice", "x") !== key("timesharing=*,name", "alice", "y"));
  // user,name: both.
  assertEquals(key("timesharing=user,name", "al", "x"), key("timesharing=user,name", "al", "x"));
  assertOk(key("timesharing=user,name", "al", "x") !== key("timesharing=user,name", "bo", "x"));
  // Different modes never share, even for the same user and name.
  assertOk(key("timesharing=user,*", "alice", "x") !== key("timesharing=*,*", "alice", "x"));
  // A user literally named "*" is not the wildcard.
  assertOk(key("timesharing=user,*", "*", "x") !== key("timesharing=*,*", "alice", "x"));
  // Bare `timesharing` and a missing second part mean `*`.
  assertEquals(key("timesharing", "alice", null), key("timesharing=*,*", "bob", null));
  assertEquals(key("timesharing=user", "alice", null), key("timesharing=user,*", "alice", "z"));
});
