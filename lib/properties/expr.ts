/**
 * Property expressions: the `-p` of oarsub, the `{...}` groups of `-l`, and the `--sql` filters
 * of the admin commands. OAR stores such SQL text in jobs.properties and
 * job_resource_groups.res_group_property and the scheduler splices it into its queries, so a
 * user string must never reach the database as it was typed.
 *
 * Here an expression is parsed into a small tree over a closed grammar, checked against the
 * real columns of the table (see columns.ts), and printed again from the tree: the stored text
 * is ours, built from validated names and re-quoted literals, never the user's characters.
 *
 *   expr      := and ( OR and )*
 *   and       := not ( AND not )*
 *   not       := NOT not | primary
 *   primary   := '(' expr ')' | operand rest
 *   rest      := cmp operand | [NOT] IN '(' literal (',' literal)* ')' | [NOT] LIKE string
 *              | IS [NOT] NULL
 *   cmp       := = | != | <> | < | <= | > | >=
 *   operand   := column | 'string' | [-]number
 *
 * Anything else (functions, casts, sub-queries, comments, `;`, double quotes) is refused with a
 * message that says what was refused.
 */

/** The SQL type family of a column, which decides how literals compare with it. */
export type ColumnKind = "number" | "text" | "other";

/** Known columns of the table an expression filters, by lower-case name. */
export type ColumnSet = ReadonlyMap<string, ColumnKind>;

export class PropertyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PropertyError";
  }
}

export type CmpOp = "=" | "<>" | "<" | "<=" | ">" | ">=";

export type Operand =
  | { k: "col"; name: string; kind: ColumnKind }
  | { k: "str"; v: string }
  | { k: "num"; v: string };

export type Literal = Extract<Operand, { k: "str" | "num" }>;

export type Expr =
  | { k: "and" | "or"; l: Expr; r: Expr }
  | { k: "not"; e: Expr }
  | { k: "cmp"; op: CmpOp; l: Operand; r: Operand }
  | { k: "in"; not: boolean; col: Operand; values: Literal[] }
  | { k: "like"; not: boolean; col: Operand; pattern: string }
  | { k: "null"; not: boolean; col: Operand };

// ---------------------------------------------------------------------------------------------
// tokens

type Token =
  | { t: "ident"; v: string; at: number }
  | { t: "str"; v: string; at: number }
  | { t: "num"; v: string; at: number }
  | { t: "op"; v: string; at: number }
  | { t: "end"; at: number };

/** Words that start statements or sub-queries: named in the refusal, for a clear message. */
const STATEMENT_WORDS = new Set([
  "select",
  "from",
  "where",
  "union",
  "insert",
  "update",
  "delete",
  "drop",
  "create",
  "alter",
  "truncate",
  "grant",
  "revoke",
  "exists",
  "with",
  "into",
  "values",
  "copy",
  "execute",
  "returning",
]);

const KEYWORDS = new Set(["and", "or", "not", "in", "like", "is", "null"]);

/** The longest expression accepted; a property filter is a line, not a document. */
export const MAX_EXPRESSION_LENGTH = 4096;

function tokenize(src: string): Token[] {
  if (src.length > MAX_EXPRESSION_LENGTH) {
    throw new PropertyError(`expression longer than ${MAX_EXPRESSION_LENGTH} characters`);
  }
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === "-" && src[i + 1] === "-") {
      throw new PropertyError("SQL comments (--) are not allowed");
    }
    if (c === "/" && src[i + 1] === "*") {
      throw new PropertyError("SQL comments (/*) are not allowed");
    }
    if (c === ";") throw new PropertyError("';' is not allowed: one expression only");
    if (c === '"') {
      throw new PropertyError("double quotes are not allowed: write property names bare");
    }
    if (c === ":" && src[i + 1] === ":") throw new PropertyError("casts (::) are not allowed");
    if (c === "'") {
      // Standard SQL string: '' stands for one quote; backslashes are plain characters.
      let v = "";
      let j = i + 1;
      for (;;) {
        if (j >= src.length) throw new PropertyError("unterminated string literal");
        if (src[j] === "'") {
          if (src[j + 1] === "'") {
            v += "'";
            j += 2;
            continue;
          }
          break;
        }
        v += src[j++];
      }
      if (v.includes("\0")) throw new PropertyError("NUL characters are not allowed in strings");
      out.push({ t: "str", v, at: i });
      i = j + 1;
      continue;
    }
    const num = /^\d+(\.\d+)?/.exec(src.slice(i));
    if (num) {
      if (/^[A-Za-z_]/.test(src.slice(i + num[0].length))) {
        throw new PropertyError(`malformed number near "${src.slice(i, i + 20)}"`);
      }
      out.push({ t: "num", v: num[0], at: i });
      i += num[0].length;
      continue;
    }
    const id = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i));
    if (id) {
      out.push({ t: "ident", v: id[0], at: i });
      i += id[0].length;
      continue;
    }
    const op = /^(<>|!=|<=|>=|=|<|>|\(|\)|,|-)/.exec(src.slice(i));
    if (op) {
      out.push({ t: "op", v: op[0], at: i });
      i += op[0].length;
      continue;
    }
    throw new PropertyError(`unexpected character '${c}' at position ${i + 1}`);
  }
  out.push({ t: "end", at: src.length });
  return out;
}

// ---------------------------------------------------------------------------------------------
// parser

class Parser {
  #pos = 0;
  constructor(readonly tokens: Token[], readonly columns: ColumnSet) {}

  peek(offset = 0): Token {
    return this.tokens[Math.min(this.#pos + offset, this.tokens.length - 1)];
  }
  next(): Token {
    return this.tokens[Math.min(this.#pos++, this.tokens.length - 1)];
  }
  isWord(word: string, offset = 0): boolean {
    const t = this.peek(offset);
    return t.t === "ident" && t.v.toLowerCase() === word;
  }
  isOp(op: string): boolean {
    const t = this.peek();
    return t.t === "op" && t.v === op;
  }
  expectOp(op: string): void {
    if (!this.isOp(op)) throw new PropertyError(`expected '${op}' ${this.where()}`);
    this.next();
  }
  where(): string {
    const t = this.peek();
    if (t.t === "end") return "at the end of the expression";
    return `before "${"v" in t ? t.v : ""}" (position ${t.at + 1})`;
  }

  parse(): Expr {
    if (this.peek().t === "end") throw new PropertyError("empty expression");
    const e = this.or();
    if (this.peek().t !== "end") throw new PropertyError(`unexpected input ${this.where()}`);
    return e;
  }

  or(): Expr {
    let l = this.and();
    while (this.isWord("or")) {
      this.next();
      l = { k: "or", l, r: this.and() };
    }
    return l;
  }

  and(): Expr {
    let l = this.not();
    while (this.isWord("and")) {
      this.next();
      l = { k: "and", l, r: this.not() };
    }
    return l;
  }

  not(): Expr {
    if (this.isWord("not")) {
      this.next();
      return { k: "not", e: this.not() };
    }
    return this.primary();
  }

  primary(): Expr {
    if (this.isOp("(")) {
      this.next();
      if (this.isWord("select") || this.isWord("with") || this.isWord("values")) {
        throw new PropertyError("sub-queries are not allowed");
      }
      const e = this.or();
      this.expectOp(")");
      return e;
    }
    const left = this.operand();
    const t = this.peek();
    if (t.t === "op" && ["=", "!=", "<>", "<", "<=", ">", ">="].includes(t.v)) {
      this.next();
      const op = (t.v === "!=" ? "<>" : t.v) as CmpOp;
      return this.comparison(op, left, this.operand());
    }
    let negated = false;
    if (this.isWord("not")) {
      negated = true;
      this.next();
    }
    if (this.isWord("in")) {
      this.next();
      return this.inList(left, negated);
    }
    if (this.isWord("like")) {
      this.next();
      const p = this.next();
      if (p.t !== "str") throw new PropertyError("LIKE needs a quoted pattern");
      if (left.k !== "col" || left.kind === "number") {
        throw new PropertyError("LIKE applies to a text property");
      }
      return { k: "like", not: negated, col: left, pattern: p.v };
    }
    if (!negated && this.isWord("is")) {
      this.next();
      let not = false;
      if (this.isWord("not")) {
        not = true;
        this.next();
      }
      if (!this.isWord("null")) throw new PropertyError(`expected NULL ${this.where()}`);
      this.next();
      if (left.k !== "col") throw new PropertyError("IS NULL applies to a property");
      return { k: "null", not, col: left };
    }
    throw new PropertyError(`expected a comparison ${this.where()}`);
  }

  inList(left: Operand, not: boolean): Expr {
    this.expectOp("(");
    if (this.isWord("select") || this.isWord("with") || this.isWord("values")) {
      throw new PropertyError("sub-queries are not allowed");
    }
    if (left.k !== "col") throw new PropertyError("IN applies to a property");
    const values: Literal[] = [];
    for (;;) {
      const v = this.operand();
      if (v.k === "col") throw new PropertyError("IN takes a list of literal values");
      values.push(coerce(left, v));
      if (this.isOp(",")) {
        this.next();
        continue;
      }
      break;
    }
    this.expectOp(")");
    return { k: "in", not, col: left, values };
  }

  comparison(op: CmpOp, l: Operand, r: Operand): Expr {
    if (l.k === "col" && r.k === "col") {
      if (l.kind !== r.kind) {
        throw new PropertyError(`cannot compare ${l.name} with ${r.name}: different types`);
      }
      return { k: "cmp", op, l, r };
    }
    if (l.k === "col") return { k: "cmp", op, l, r: coerce(l, r as Literal) };
    if (r.k === "col") return { k: "cmp", op, l: coerce(r, l as Literal), r };
    if (l.k !== r.k) throw new PropertyError("cannot compare a string with a number");
    return { k: "cmp", op, l, r };
  }

  operand(): Operand {
    const t = this.next();
    if (t.t === "str") return { k: "str", v: t.v };
    if (t.t === "num") return { k: "num", v: t.v };
    if (t.t === "op" && t.v === "-") {
      const n = this.next();
      if (n.t !== "num") throw new PropertyError("'-' must be followed by a number");
      return { k: "num", v: `-${n.v}` };
    }
    if (t.t === "ident") {
      const lower = t.v.toLowerCase();
      if (this.isOp("(")) throw new PropertyError(`function calls are not allowed (${t.v})`);
      if (STATEMENT_WORDS.has(lower)) {
        throw new PropertyError(`SQL statements and sub-queries are not allowed (${t.v})`);
      }
      if (KEYWORDS.has(lower)) throw new PropertyError(`unexpected ${t.v.toUpperCase()}`);
      const kind = this.columns.get(lower);
      if (kind === undefined) throw new PropertyError(`unknown property '${t.v}'`);
      return { k: "col", name: lower, kind };
    }
    if (t.t === "end") throw new PropertyError("incomplete expression");
    if (t.t === "op" && t.v === "(" && (this.isWord("select") || this.isWord("with"))) {
      throw new PropertyError("sub-queries are not allowed");
    }
    throw new PropertyError(`unexpected '${t.v}' (position ${t.at + 1})`);
  }
}

const NUMERIC_TEXT = /^-?\d+(\.\d+)?$/;

/**
 * A literal compared with a column gets the column's type: a number compared with a text
 * column becomes a string ('5'), a numeric string compared with a number column becomes a
 * number; a non-numeric string against a number column is refused here rather than by the
 * scheduler's query later.
 */
function coerce(col: Operand, lit: Literal): Literal {
  if (col.k !== "col") return lit;
  if (col.kind === "text" && lit.k === "num") return { k: "str", v: lit.v };
  if (col.kind === "number" && lit.k === "str") {
    const s = lit.v.trim();
    if (!NUMERIC_TEXT.test(s)) {
      throw new PropertyError(`property ${col.name} is a number, '${lit.v}' is not`);
    }
    return { k: "num", v: s };
  }
  return lit;
}

/** Parses and checks an expression against the known columns. Throws PropertyError. */
export function parseExpression(src: string, columns: ColumnSet): Expr {
  return new Parser(tokenize(src), columns).parse();
}

// ---------------------------------------------------------------------------------------------
// printing

/** PostgreSQL reserved words a site could conceivably have as a column name. */
const RESERVED = new Set([
  "user",
  "order",
  "group",
  "limit",
  "offset",
  "table",
  "column",
  "default",
  "check",
  "primary",
  "references",
  "unique",
  "all",
  "any",
  "case",
  "end",
  "else",
  "then",
  "when",
  "desc",
  "asc",
  "to",
  "on",
  "only",
  "user",
  "current_user",
  "session_user",
]);

function ident(name: string): string {
  return RESERVED.has(name) ? `"${name}"` : name;
}

function quote(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

function printOperand(o: Operand): string {
  if (o.k === "col") return ident(o.name);
  if (o.k === "num") return o.v;
  return quote(o.v);
}

function sub(e: Expr, print: (e: Expr) => string): string {
  return e.k === "and" || e.k === "or" ? `(${print(e)})` : print(e);
}

/** The normalised SQL text of an expression: what OAR's tables store. */
export function toSql(e: Expr): string {
  switch (e.k) {
    case "and":
      return `${sub(e.l, toSql)} AND ${sub(e.r, toSql)}`;
    case "or":
      return `${sub(e.l, toSql)} OR ${sub(e.r, toSql)}`;
    case "not":
      return `NOT ${e.e.k === "not" ? toSql(e.e) : `(${toSql(e.e)})`}`;
    case "cmp":
      return `${printOperand(e.l)} ${e.op} ${printOperand(e.r)}`;
    case "in":
      return `${printOperand(e.col)} ${e.not ? "NOT IN" : "IN"} (${
        e.values.map(printOperand).join(", ")
      })`;
    case "like":
      return `${printOperand(e.col)} ${e.not ? "NOT LIKE" : "LIKE"} ${quote(e.pattern)}`;
    case "null":
      return `${printOperand(e.col)} IS ${e.not ? "NOT NULL" : "NULL"}`;
  }
}

export type Param = string | number;

function paramOperand(o: Operand, params: Param[]): string {
  if (o.k === "col") return ident(o.name);
  // Numbers get an explicit type (a decimal against an integer column must stay a decimal);
  // strings take the column's type (varchar, text, or an enum such as jobs.state).
  if (o.k === "num") {
    params.push(o.v);
    return `$${params.length}::numeric`;
  }
  params.push(o.v);
  return `$${params.length}`;
}

/**
 * The same expression with every literal as a parameter (`$n`, numbered after what `params`
 * already holds, so several expressions can share one statement). Appends to `params`.
 */
export function toParameterised(e: Expr, params: Param[]): string {
  const p = (x: Expr) => toParameterised(x, params);
  switch (e.k) {
    case "and":
      return `${sub(e.l, p)} AND ${sub(e.r, p)}`;
    case "or":
      return `${sub(e.l, p)} OR ${sub(e.r, p)}`;
    case "not":
      return `NOT (${p(e.e)})`;
    case "cmp":
      return `${paramOperand(e.l, params)} ${e.op} ${paramOperand(e.r, params)}`;
    case "in":
      return `${paramOperand(e.col, params)} ${e.not ? "NOT IN" : "IN"} (${
        e.values.map((v) => paramOperand(v, params)).join(", ")
      })`;
    case "like":
      return `${paramOperand(e.col, params)} ${e.not ? "NOT LIKE" : "LIKE"} ${
        paramOperand({ k: "str", v: e.pattern }, params)
      }`;
    case "null":
      return `${paramOperand(e.col, params)} IS ${e.not ? "NOT NULL" : "NULL"}`;
  }
}

/** Whether the expression mentions a column (e.g. `type`, to know if a default applies). */
export function mentionsColumn(e: Expr, name: string): boolean {
  const isCol = (o: Operand) => o.k === "col" && o.name === name;
  switch (e.k) {
    case "and":
    case "or":
      return mentionsColumn(e.l, name) || mentionsColumn(e.r, name);
    case "not":
      return mentionsColumn(e.e, name);
    case "cmp":
      return isCol(e.l) || isCol(e.r);
    default:
      return isCol(e.col);
  }
}

/** A checked expression in both forms. */
export interface Filter {
  expr: Expr;
  /** Normalised SQL text, safe to store for the scheduler. */
  sql: string;
}

export function checkExpression(src: string, columns: ColumnSet): Filter {
  const expr = parseExpression(src, columns);
  return { expr, sql: toSql(expr) };
}

/** Conjunction of expressions (null entries skipped), or null when there is none. */
export function andAll(exprs: (Expr | null | undefined)[]): Expr | null {
  let out: Expr | null = null;
  for (const e of exprs) {
    if (!e) continue;
    out = out ? { k: "and", l: out, r: e } : e;
  }
  return out;
}
