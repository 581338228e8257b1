import { z } from "zod";
import type { Parser } from "./configValues.js";

/*
 * The machinery of the config table (src/platform/configTable.ts). A variable is written once: its name, its parser (which
 * carries its default), its fix and its documentation. Sections group variables the way Config is grouped, and
 * Config's type is inferred from them (ValuesOf). loadConfig parses the environment with the one schema built from
 * the table's rows, and README.md's table and .env.example are rendered from the same rows.
 */

/** Which parts of the config a caller needs: the console and deploy-commands need no Discord token or no model. */
export type ConfigPurpose = "bot" | "console" | "deploy" | "model";

/** The model runtime that reads a variable; with the other one, it is ignored with a warning. */
export type Runtime = "in-process" | "server";

export interface Variable<T> {
  readonly kind: "variable";
  readonly name: string;
  readonly schema: z.ZodType<T, string | undefined>;
  /** The default as the docs show it (markdown); "" for none. */
  readonly shown: string;
  /** What to do about a bad value: the last sentence of its ConfigError. */
  readonly fix: string;
  /** What it does, in one markdown paragraph: README.md's Meaning column and .env.example's comment. */
  readonly doc: string;
  readonly readBy: Runtime | undefined;
  /** The one kind of model server that reads it; named with another kind, it is ignored with a warning. */
  readonly serverKind: string | undefined;
  /** What cannot run without it. */
  readonly requiredFor: readonly ConfigPurpose[];
}

export interface Section<F extends Fields, R, I extends boolean> {
  readonly kind: "section";
  /** A heading in the docs; an untitled section continues the heading before it. */
  readonly title: string | undefined;
  /** Its values go into the enclosing object, not under its own key. */
  readonly inline: I;
  readonly readBy: Runtime | undefined;
  readonly fields: F;
  /** From the parsed values of `fields` to this part of the config. */
  finish(values: ValuesOf<F>, fields: F): R;
}

export type Field = Variable<unknown> | Section<Fields, unknown, boolean>;

export interface Fields {
  readonly [key: string]: Field;
}

type Simplify<T> = { [K in keyof T]: T[K] } & {};
type UnionToIntersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void
  ? I
  : never;
type InlineKeys<F> = { [K in keyof F]: F[K] extends { readonly inline: true } ? K : never }[keyof F];

/** The value a variable or a section contributes to the config. */
export type ValueOf<N> =
  N extends Variable<infer T> ? T : N extends Section<infer _F, infer R, boolean> ? R : never;

/** The config part that `fields` make: one key per field, an inline section's keys merged in. */
export type ValuesOf<F extends Fields> = Simplify<
  { readonly [K in Exclude<keyof F, InlineKeys<F>>]: ValueOf<F[K]> } & UnionToIntersection<
    { [K in InlineKeys<F>]: ValueOf<F[K]> }[InlineKeys<F>]
  >
>;

/** The fix of a variable the table gives none (free text, which no value makes bad). */
export const GENERIC_FIX = "See .env.example.";

export interface VariableAbout {
  /** The default as shown, where the parser's own (its fallback value) would not say it. */
  readonly default?: string;
  readonly fix?: string;
  readonly doc: string;
  readonly readBy?: Runtime;
  readonly serverKind?: string;
  readonly requiredFor?: readonly ConfigPurpose[];
}

export function variable<T>(name: string, parser: Parser<T>, about: VariableAbout): Variable<T> {
  return {
    kind: "variable",
    name,
    schema: parser.schema,
    shown: about.default ?? parser.shown,
    fix: about.fix ?? GENERIC_FIX,
    doc: about.doc,
    readBy: about.readBy,
    serverKind: about.serverKind,
    requiredFor: about.requiredFor ?? [],
  };
}

export interface SectionAbout<I extends boolean> {
  readonly title?: string;
  readonly inline?: I;
  readonly readBy?: Runtime;
}

export function section<const F extends Fields, R = ValuesOf<F>, const I extends boolean = false>(
  about: SectionAbout<I>,
  fields: F,
  finish?: (values: ValuesOf<F>, fields: F) => R,
): Section<F, NoInfer<R>, I> {
  return {
    kind: "section",
    title: about.title,
    inline: (about.inline ?? false) as I,
    readBy: about.readBy,
    fields,
    // Without a finish, R is ValuesOf<F> (its default), so the values are the section's value as they are.
    finish: finish ?? ((values) => values as unknown as R),
  };
}

/** One variable as the docs list it: under its heading, read by one runtime or both. */
export interface Row {
  readonly variable: Variable<unknown>;
  readonly heading: string;
  readonly readBy: Runtime | undefined;
}

/** Every variable of the table, in its order. */
export function rowsOf(fields: Fields): readonly Row[] {
  const rows: Row[] = [];
  let heading = "";
  const visit = (inner: Fields, readBy: Runtime | undefined) => {
    for (const field of Object.values(inner)) {
      if (field.kind === "variable") {
        rows.push({ variable: field, heading, readBy: field.readBy ?? readBy });
        continue;
      }
      heading = field.title ?? heading;
      visit(field.fields, field.readBy ?? readBy);
    }
  };
  visit(fields, undefined);
  return rows;
}

/** The one schema of the environment: each variable's parser, under its name. */
export function schemaOf(rows: readonly Row[]) {
  return z.object(Object.fromEntries(rows.map(({ variable }) => [variable.name, variable.schema])));
}

/** The parsed environment (by variable name) assembled into the shape of `fields`, each section finished. */
export function valuesOf(fields: Fields, parsed: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(fields)) {
    if (field.kind === "variable") {
      values[key] = parsed[field.name];
      continue;
    }
    // The walk is untyped; section() typed each finish against the values this walk builds.
    const value = field.finish(valuesOf(field.fields, parsed) as never, field.fields);
    if (field.inline) Object.assign(values, value);
    else values[key] = value;
  }
  return values;
}
