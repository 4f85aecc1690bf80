/**
 * Companion of zmq_unload_case.ts: keeps the test process alive after the other module ended,
 * for several of libzmq's 100 ms reconnect intervals. A fixed wait is the point here: there is
 * no event to wait for, only time for a crash to happen in.
 */
Deno.test("zmq unload case: outlive the other module", async () => {
  await new Promise((resolve) => setTimeout(resolve, 1000));
});
