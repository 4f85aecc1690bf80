/** One argument for `sh -c`, single-quoted: user strings reach a shell only this way. */
export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}
