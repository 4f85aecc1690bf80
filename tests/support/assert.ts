/**
 * The assertions our tests use, over `node:assert` (JSR's @std/assert is not reachable from
 * our machines). Names follow @std/assert so tests read the same.
 */
import assert from "node:assert/strict";

export function assertEquals<T>(actual: unknown, expected: T, msg?: string): asserts actual is T {
  assert.deepStrictEqual(actual, expected, msg);
}

export function assertNotEquals(actual: unknown, expected: unknown, msg?: string): void {
  assert.notDeepStrictEqual(actual, expected, msg);
}

export function assertOk(cond: unknown, msg?: string): asserts cond {
  assert.ok(cond, msg);
}

export function assertMatch(actual: string, re: RegExp, msg?: string): void {
  assert.match(actual, re, msg);
}

export function assertStringIncludes(actual: string, expected: string, msg?: string): void {
  assert.ok(
    actual.includes(expected),
    msg ??
      `expected ${JSON.stringify(actual.slice(0, 500))} to include ${JSON.stringify(expected)}`,
  );
}

type ErrorClass<E extends Error> = new (...args: never[]) => E;

/** Runs fn, asserts it throws (an instance of cls, whose message includes msgIncludes). */
export function assertThrows<E extends Error = Error>(
  fn: () => unknown,
  cls?: ErrorClass<E>,
  msgIncludes?: string,
): E {
  try {
    fn();
  } catch (e) {
    return checkError(e, cls, msgIncludes);
  }
  throw new assert.AssertionError({ message: "expected function to throw" });
}

export async function assertRejects<E extends Error = Error>(
  fn: () => Promise<unknown>,
  cls?: ErrorClass<E>,
  msgIncludes?: string,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    return checkError(e, cls, msgIncludes);
  }
  throw new assert.AssertionError({ message: "expected promise to reject" });
}

function checkError<E extends Error>(e: unknown, cls?: ErrorClass<E>, msgIncludes?: string): E {
  if (cls && !(e instanceof cls)) {
    throw new assert.AssertionError({
      message: `expected ${cls.name}, got ${(e as Error)?.constructor?.name}: ${e}`,
    });
  }
  if (msgIncludes !== undefined && !String((e as Error)?.message).includes(msgIncludes)) {
    throw new assert.AssertionError({
      message: `expected error message to include ${JSON.stringify(msgIncludes)}, got ${
        JSON.stringify((e as Error)?.message)
      }`,
    });
  }
  return e as E;
}
