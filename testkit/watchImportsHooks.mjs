// The module hooks behind watchImports.mjs; they run on Node's loader thread.
import { appendFileSync } from "node:fs";

let log;

export function initialize(data) {
  log = data?.log;
}

export async function resolve(specifier, context, next) {
  const isPackage = !/^(\.|\/|node:|file:|data:)/.test(specifier);
  if (log && isPackage) appendFileSync(log, `${specifier}\n`);
  return next(specifier, context);
}
